// Package k8s renders the Kubernetes manifest that runs an encjob job as
// an Indexed Job, one shard per index (see docs/kubernetes.md).
//
// Render writes two YAML documents built from the typed k8s.io/api
// objects:
//
//   - a ConfigMap NAME-spec holding the job spec file, immutable so that
//     every pod of the run, retries included, reads the same spec;
//
//   - a batch/v1 Job NAME with completionMode Indexed and completions =
//     shards. Kubernetes sets JOB_COMPLETION_INDEX in each pod; the
//     container runs
//
//     encjob apply --auto-approve -f /etc/encjob/FILE --shards N \
//     --metadata-output PREFIX/shard-$(JOB_COMPLETION_INDEX).jsonl
//
//     (--auto-approve: a pod has no terminal, and encjob refuses to
//     replace sources in place without it).
//
//     and encjob takes its shard index from that variable (package
//     shard). Kubernetes itself expands $(JOB_COMPLETION_INDEX) in the
//     arguments, because the Job controller adds the variable to the
//     container's env.
//
// Failures: each index is retried up to BackoffLimitPerIndex times, but a
// pod that exits with a code in NonRetryableExitCodes (a spec or usage
// error, a refused plan: retrying cannot help) fails its index at once
// (exit 4, an internal error, is retried like any other failure),
// and a pod that was disrupted (evicted, preempted, node drained) is
// retried without counting against the limit. These need Kubernetes 1.29
// or later (podFailurePolicy with FailIndex and backoffLimitPerIndex).
//
// The pod runs as a non-root user (UID 65532, distroless "nonroot"), with
// a read-only root filesystem, no capabilities, no privilege escalation,
// the RuntimeDefault seccomp profile, no Kubernetes API token, and a
// writable emptyDir at /tmp (TMPDIR). The image's entrypoint must be the
// encjob binary (deploy/Dockerfile builds one).
package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/encjob/encjob/spec"
)

// Exit codes of encjob that retrying a pod cannot fix; the pod failure
// policy fails the index without retry when the container exits with one
// of them. The CLI documents the full table: 0 ok, 1 some items failed
// (retried: a re-run skips what is done), 2 usage or spec error, 3 plan
// refused (stale or errored), 130 interrupted.
const (
	ExitUsage   = 2
	ExitRefused = 3
)

// NonRetryableExitCodes lists ExitUsage and ExitRefused.
var NonRetryableExitCodes = []int32{ExitUsage, ExitRefused}

// Fixed names and paths in the rendered pod.
const (
	ContainerName   = "encjob"
	SpecMountPath   = "/etc/encjob"
	TmpMountPath    = "/tmp"
	RunAsUser       = 65532 // distroless "nonroot"
	DefaultSpecFile = "job.yaml"
	// SpecDigestAnnotation carries the SHA-256 of the spec file content
	// on the ConfigMap and the Job.
	SpecDigestAnnotation = "encjob.dev/spec-sha256"
	// MaxShards is the largest completions count rendered (the Kubernetes
	// soft limit for Indexed Jobs with backoffLimitPerIndex).
	MaxShards = 100_000
	// maxConfigMapData leaves room under the 1 MiB object limit for the
	// object's metadata.
	maxConfigMapData = 1000 * 1024
)

// Resources are Kubernetes quantities ("500m", "2", "512Mi"); an empty
// field is left unset.
type Resources struct {
	CPU    string
	Memory string
}

// Options describe one rendered run.
type Options struct {
	Name      string // the Job's name (a DNS-1123 label); the ConfigMap is NAME-spec
	Namespace string // "" = leave it to kubectl -n
	Image     string // required; its entrypoint is encjob

	Shards      int32 // completions, ≥ 1
	Parallelism int32 // pods at once; 0 = Shards

	SpecYAML     []byte // the job spec file content, UTF-8, ≤ 1000 KiB
	SpecFileName string // its key in the ConfigMap and name under /etc/encjob; "" = "job.yaml"

	ServiceAccount string // for workload identity (IRSA, EKS Pod Identity); "" = the namespace default

	Requests, Limits Resources

	// BackoffLimitPerIndex is how many times a failed index is retried
	// (0 = never). The CLI's default is DefaultBackoffLimitPerIndex.
	BackoffLimitPerIndex int32
	// MaxFailedIndexes stops the whole Job once more indexes than this
	// have failed; nil = run every index regardless.
	MaxFailedIndexes *int32

	// MetadataPrefix is the shared results location, an s3:// URL or an
	// absolute path on a shared volume, e.g.
	// "s3://bucket/encjob-runs/NAME/". Shard i writes
	// PREFIX/shard-i.jsonl; `encjob report` merges them. Required.
	MetadataPrefix string

	// ItemsPrefix, when set, is where `encjob partition` wrote the run's
	// item list, one part per shard; the container gets --items PREFIX
	// and shard i reads only its part instead of listing every source
	// (docs/kubernetes.md, "Listing at scale"). "" = each shard lists the
	// sources and keeps the items it owns.
	ItemsPrefix string

	ExtraArgs []string          // appended to the encjob apply arguments
	Env       map[string]string // extra environment, e.g. AWS_REGION
}

// DefaultBackoffLimitPerIndex is the retry budget the CLI should offer by
// default: enough for transient failures (a retry skips finished items).
const DefaultBackoffLimitPerIndex = 3

// Render validates o and writes the manifest: the ConfigMap, "---", the
// Job. Validation errors are a spec.ErrorList naming each option.
func Render(w io.Writer, o Options) error {
	cm, job, err := Objects(o)
	if err != nil {
		return err
	}
	cmY, err := yaml.Marshal(cm)
	if err != nil {
		return fmt.Errorf("k8s: encoding the configmap: %w", err)
	}
	// The Job without its (empty) status.
	jobY, err := yaml.Marshal(struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            batchv1.JobSpec   `json:"spec"`
	}{job.TypeMeta, job.ObjectMeta, job.Spec})
	if err != nil {
		return fmt.Errorf("k8s: encoding the job: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by encjob: ConfigMap %s and Indexed Job %s (%d shards).\n", cm.Name, job.Name, *job.Spec.Completions)
	fmt.Fprintf(&b, "# Apply with: kubectl apply -f FILE; re-running needs kubectl delete -f FILE first.\n")
	b.WriteString("---\n")
	b.Write(cmY)
	b.WriteString("---\n")
	b.Write(jobY)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("k8s: writing the manifest: %w", err)
	}
	return nil
}

// Validate checks o and returns every problem as a spec.ErrorList.
func (o *Options) Validate() error {
	var errs spec.ErrorList
	add := func(e *spec.Error) { errs = append(errs, e) }
	p := spec.NewPath

	switch msgs := validation.IsDNS1123Label(o.Name); {
	case o.Name == "":
		add(spec.Required(p("name"), "the Job's name: lowercase letters, digits and '-'"))
	case len(msgs) > 0:
		add(spec.Invalid(p("name"), o.Name, strings.Join(msgs, "; ")))
	case o.Shards >= 1 && len(o.Name)+1+len(strconv.Itoa(int(o.Shards-1))) > validation.DNS1123LabelMaxLength:
		// Pods of an Indexed Job get the hostname NAME-INDEX.
		add(spec.Invalid(p("name"), o.Name, fmt.Sprintf("too long for %d shards: NAME-INDEX must fit in %d characters",
			o.Shards, validation.DNS1123LabelMaxLength)))
	}
	if o.Namespace != "" {
		if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
			add(spec.Invalid(p("namespace"), o.Namespace, strings.Join(msgs, "; ")))
		}
	}
	switch {
	case o.Image == "":
		add(spec.Required(p("image"), "an image whose entrypoint is encjob, e.g. registry.example.com/encjob:v1.2.3"))
	case strings.ContainsFunc(o.Image, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		add(spec.Invalid(p("image"), o.Image, "an image reference has no spaces or control characters"))
	}
	if o.Shards < 1 || o.Shards > MaxShards {
		add(spec.Invalid(p("shards"), o.Shards, fmt.Sprintf("want 1 to %d", MaxShards)))
	}
	if o.Parallelism < 0 || (o.Shards >= 1 && o.Parallelism > o.Shards) {
		add(spec.Invalid(p("parallelism"), o.Parallelism, "want 0 (= shards) to the number of shards"))
	}
	if len(o.SpecYAML) == 0 {
		add(spec.Required(p("specYAML"), "the job spec file content"))
	} else if !utf8.Valid(o.SpecYAML) {
		add(spec.Invalid(p("specYAML"), nil, "the spec file is not UTF-8 text"))
	} else if len(o.SpecYAML) > maxConfigMapData {
		add(spec.Invalid(p("specYAML"), len(o.SpecYAML), fmt.Sprintf("a ConfigMap holds at most %d bytes of spec", maxConfigMapData)))
	}
	if o.SpecFileName != "" {
		if msgs := validation.IsConfigMapKey(o.SpecFileName); len(msgs) > 0 {
			add(spec.Invalid(p("specFileName"), o.SpecFileName, strings.Join(msgs, "; ")))
		}
	}
	if o.ServiceAccount != "" {
		if msgs := validation.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
			add(spec.Invalid(p("serviceAccount"), o.ServiceAccount, strings.Join(msgs, "; ")))
		}
	}
	req := parseResources(p("requests"), o.Requests, add)
	lim := parseResources(p("limits"), o.Limits, add)
	for name, q := range req {
		if l, ok := lim[name]; ok && q.Cmp(l) > 0 {
			add(spec.Invalid(p("requests").Child(string(name)), q.String(),
				fmt.Sprintf("must not exceed the limit %s", l.String())))
		}
	}
	if o.BackoffLimitPerIndex < 0 {
		add(spec.Invalid(p("backoffLimitPerIndex"), o.BackoffLimitPerIndex, "want 0 or more"))
	}
	if m := o.MaxFailedIndexes; m != nil && (*m < 0 || (o.Shards >= 1 && *m > o.Shards)) {
		add(spec.Invalid(p("maxFailedIndexes"), *m, "want 0 to the number of shards"))
	}
	switch mp := o.MetadataPrefix; {
	case mp == "":
		add(spec.Required(p("metadataPrefix"), "where shards write their metadata logs, e.g. s3://bucket/encjob-runs/NAME/"))
	case !strings.HasPrefix(mp, "s3://") && !strings.HasPrefix(mp, "/"):
		add(spec.Invalid(p("metadataPrefix"), mp, "want an s3:// URL or an absolute path on a volume every pod mounts"))
	case strings.HasPrefix(mp, "s3://") && len(strings.Trim(strings.TrimPrefix(mp, "s3://"), "/")) == 0:
		add(spec.Invalid(p("metadataPrefix"), mp, "the s3:// URL needs a bucket"))
	case strings.ContainsAny(mp, "$ \t\n"):
		add(spec.Invalid(p("metadataPrefix"), mp, "no '$' or whitespace: Kubernetes would expand $(...) in it"))
	}
	if ip := o.ItemsPrefix; ip != "" && (!strings.HasPrefix(ip, "s3://") && !strings.HasPrefix(ip, "/") ||
		strings.ContainsAny(ip, "$ \t\n") || strings.HasPrefix(ip, "s3://") && strings.Trim(strings.TrimPrefix(ip, "s3://"), "/") == "") {
		add(spec.Invalid(p("itemsPrefix"), ip, "want an s3://bucket/prefix/ URL or an absolute path, without '$' or whitespace"))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		switch {
		case k == "JOB_COMPLETION_INDEX" || k == "TMPDIR":
			add(spec.Forbidden(p("env").Key(k), "set by Kubernetes or by the rendered manifest"))
		case len(validation.IsEnvVarName(k)) > 0:
			add(spec.Invalid(p("env").Key(k), k, strings.Join(validation.IsEnvVarName(k), "; ")))
		}
	}
	return errs.Err()
}

func parseResources(path *spec.Path, r Resources, add func(*spec.Error)) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, f := range []struct {
		name corev1.ResourceName
		v    string
	}{{corev1.ResourceCPU, r.CPU}, {corev1.ResourceMemory, r.Memory}} {
		if f.v == "" {
			continue
		}
		q, err := resource.ParseQuantity(f.v)
		if err != nil || q.Sign() <= 0 {
			add(spec.Invalid(path.Child(string(f.name)), f.v, `want a positive quantity such as "500m", "2", "512Mi"`))
			continue
		}
		out[f.name] = q
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Objects validates o and builds the ConfigMap and the Job that Render
// writes.
func Objects(o Options) (*corev1.ConfigMap, *batchv1.Job, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	file := o.SpecFileName
	if file == "" {
		file = DefaultSpecFile
	}
	parallelism := o.Parallelism
	if parallelism == 0 {
		parallelism = o.Shards
	}
	sum := sha256.Sum256(o.SpecYAML)
	digest := hex.EncodeToString(sum[:])
	labels := map[string]string{
		"app.kubernetes.io/name":       "encjob",
		"app.kubernetes.io/instance":   o.Name,
		"app.kubernetes.io/managed-by": "encjob",
	}
	annotations := map[string]string{SpecDigestAnnotation: digest}
	cmName := o.Name + "-spec"

	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: cmName, Namespace: o.Namespace,
			Labels: labels, Annotations: annotations,
		},
		Immutable: new(true),
		Data:      map[string]string{file: string(o.SpecYAML)},
	}

	container := podContainer(o, file)

	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace,
			Labels: labels, Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			CompletionMode:       new(batchv1.IndexedCompletion),
			Completions:          new(o.Shards),
			Parallelism:          new(parallelism),
			BackoffLimitPerIndex: new(o.BackoffLimitPerIndex),
			MaxFailedIndexes:     o.MaxFailedIndexes,
			PodFailurePolicy:     podFailurePolicy(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           o.ServiceAccount,
					AutomountServiceAccountToken: new(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   new(true),
						RunAsUser:      new(int64(RunAsUser)),
						RunAsGroup:     new(int64(RunAsUser)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
					Volumes: []corev1.Volume{
						{Name: "spec", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: cmName},
							Items:                []corev1.KeyToPath{{Key: file, Path: file}},
							DefaultMode:          new(int32(0o444)),
						}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
	return cm, job, nil
}

// podContainer is the encjob container of every pod: apply of shard
// $(JOB_COMPLETION_INDEX), as unprivileged as Kubernetes allows.
func podContainer(o Options, file string) corev1.Container {
	prefix := o.MetadataPrefix
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	args := []string{
		"apply",
		"--auto-approve", // no terminal in a pod: in-place jobs need it
		"-f", SpecMountPath + "/" + file,
		"--shards", strconv.Itoa(int(o.Shards)),
		"--metadata-output", prefix + "shard-$(JOB_COMPLETION_INDEX).jsonl",
	}
	if o.ItemsPrefix != "" {
		args = append(args, "--items", o.ItemsPrefix)
	}
	args = append(args, o.ExtraArgs...)

	env := []corev1.EnvVar{{Name: "TMPDIR", Value: TmpMountPath}}
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: o.Env[k]})
	}

	var resources corev1.ResourceRequirements
	resources.Requests = parseResources(spec.NewPath("requests"), o.Requests, func(*spec.Error) {})
	resources.Limits = parseResources(spec.NewPath("limits"), o.Limits, func(*spec.Error) {})

	runtimeDefault := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	return corev1.Container{
		Name:      ContainerName,
		Image:     o.Image,
		Args:      args,
		Env:       env,
		Resources: resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: "spec", MountPath: SpecMountPath, ReadOnly: true},
			{Name: "tmp", MountPath: TmpMountPath},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             new(true),
			ReadOnlyRootFilesystem:   new(true),
			AllowPrivilegeEscalation: new(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           runtimeDefault,
		},
	}

}

// podFailurePolicy retries disruptions without counting them and fails an
// index at once on exit codes that would fail the same way again.
func podFailurePolicy() *batchv1.PodFailurePolicy {
	return &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{
			// Evicted, preempted, node drained: retry, not counted.
			Action: batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
			},
		},
		{
			// A spec error or a refused plan fails the same way every time.
			Action: batchv1.PodFailurePolicyActionFailIndex,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: new(ContainerName),
				Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
				Values:        slices.Clone(NonRetryableExitCodes),
			},
		},
	}}
}
