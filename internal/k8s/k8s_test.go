package k8s

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/encjob/encjob/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

func exampleOptions(t *testing.T) Options {
	t.Helper()
	specYAML, err := os.ReadFile("testdata/nightly-reencrypt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Name:                 "nightly-invoices",
		Namespace:            "billing",
		Image:                "registry.example.com/encjob:v1.0.0",
		Shards:               8,
		Parallelism:          4,
		SpecYAML:             specYAML,
		SpecFileName:         "nightly-reencrypt.yaml",
		ServiceAccount:       "encjob-nightly",
		Requests:             Resources{CPU: "1", Memory: "512Mi"},
		Limits:               Resources{CPU: "2", Memory: "1Gi"},
		BackoffLimitPerIndex: 3,
		MaxFailedIndexes:     new(int32(2)),
		MetadataPrefix:       "s3://acme-encjob-results/runs/nightly-invoices",
		ExtraArgs:            []string{"--no-progress"},
		Env: map[string]string{
			"BUCKET":      "acme-invoices",
			"OLD_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-11aa-11aa-11aa-1111aaaa1111",
			"NEW_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/2222bbbb-22bb-22bb-22bb-2222bbbb2222",
			"AWS_REGION":  "eu-west-1",
		},
	}
}

func render(t *testing.T, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, o); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b.Bytes()
}

// decode splits the manifest and decodes each document strictly (unknown
// or duplicate fields are errors) into the typed objects.
func decode(t *testing.T, manifest []byte) (*corev1.ConfigMap, *batchv1.Job) {
	t.Helper()
	var docs []string
	for d := range strings.SplitSeq(string(manifest), "\n---\n") {
		if strings.TrimSpace(d) != "" && !strings.HasPrefix(strings.TrimSpace(d), "#") {
			docs = append(docs, d)
		}
	}
	if len(docs) != 2 {
		t.Fatalf("manifest has %d documents, want 2:\n%s", len(docs), manifest)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &cm); err != nil {
		t.Fatalf("decoding the ConfigMap strictly: %v", err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &job); err != nil {
		t.Fatalf("decoding the Job strictly: %v", err)
	}
	return &cm, &job
}

func TestGolden(t *testing.T) {
	got := render(t, exampleOptions(t))
	path := filepath.Join("testdata", "nightly-reencrypt.golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/k8s -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Render output differs from %s (run with -update if the change is intended):\n%s", path, got)
	}
	// Rendering is deterministic (env and labels come from maps).
	for range 5 {
		if again := render(t, exampleOptions(t)); !bytes.Equal(again, got) {
			t.Fatal("two renders of the same options differ")
		}
	}
}

func TestManifest(t *testing.T) {
	o := exampleOptions(t)
	cm, job := decode(t, render(t, o))

	// ConfigMap: the spec byte for byte, immutable, named after the Job.
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		t.Errorf("configmap type = %s/%s", cm.APIVersion, cm.Kind)
	}
	if cm.Name != "nightly-invoices-spec" || cm.Namespace != "billing" {
		t.Errorf("configmap = %s/%s", cm.Namespace, cm.Name)
	}
	if cm.Immutable == nil || !*cm.Immutable {
		t.Error("configmap is not immutable")
	}
	if len(cm.Data) != 1 || cm.Data["nightly-reencrypt.yaml"] != string(o.SpecYAML) || len(cm.BinaryData) != 0 {
		t.Errorf("configmap data does not hold exactly the spec file: %v", slices.Collect(func(yield func(string) bool) {
			for k := range cm.Data {
				yield(k)
			}
		}))
	}
	const digest = "encjob.dev/spec-sha256"
	if cm.Annotations[digest] == "" || cm.Annotations[digest] != job.Annotations[digest] {
		t.Errorf("spec digest annotations: configmap %q, job %q", cm.Annotations[digest], job.Annotations[digest])
	}

	// Job.
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Name != "nightly-invoices" || job.Namespace != "billing" {
		t.Errorf("job = %s/%s %s/%s", job.APIVersion, job.Kind, job.Namespace, job.Name)
	}
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode = %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || *s.Completions != 8 {
		t.Errorf("completions = %v, want 8", s.Completions)
	}
	if s.Parallelism == nil || *s.Parallelism != 4 {
		t.Errorf("parallelism = %v, want 4", s.Parallelism)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 3 {
		t.Errorf("backoffLimitPerIndex = %v, want 3", s.BackoffLimitPerIndex)
	}
	if s.MaxFailedIndexes == nil || *s.MaxFailedIndexes != 2 {
		t.Errorf("maxFailedIndexes = %v, want 2", s.MaxFailedIndexes)
	}
	if s.BackoffLimit != nil {
		t.Errorf("backoffLimit = %d, want unset (Kubernetes derives it from backoffLimitPerIndex)", *s.BackoffLimit)
	}

	// Pod failure policy: disruptions ignored first, then spec/plan errors fail the index.
	if s.PodFailurePolicy == nil || len(s.PodFailurePolicy.Rules) != 2 {
		t.Fatalf("podFailurePolicy = %+v, want 2 rules", s.PodFailurePolicy)
	}
	ign, fail := s.PodFailurePolicy.Rules[0], s.PodFailurePolicy.Rules[1]
	if ign.Action != batchv1.PodFailurePolicyActionIgnore || ign.OnExitCodes != nil ||
		len(ign.OnPodConditions) != 1 || ign.OnPodConditions[0].Type != corev1.DisruptionTarget ||
		ign.OnPodConditions[0].Status != corev1.ConditionTrue {
		t.Errorf("rule 0 = %+v, want Ignore on DisruptionTarget=True", ign)
	}
	if fail.Action != batchv1.PodFailurePolicyActionFailIndex || fail.OnExitCodes == nil || len(fail.OnPodConditions) != 0 {
		t.Fatalf("rule 1 = %+v, want FailIndex on exit codes", fail)
	}
	if ec := fail.OnExitCodes; ec.ContainerName == nil || *ec.ContainerName != "encjob" ||
		ec.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn || !slices.Equal(ec.Values, []int32{2, 3}) {
		t.Errorf("rule 1 exit codes = %+v, want In [2 3] for container encjob", ec)
	}

	// Pod.
	pod := s.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q", pod.RestartPolicy)
	}
	if pod.ServiceAccountName != "encjob-nightly" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the Kubernetes API token is mounted")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("pod has %d containers, %d init containers", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Name != "encjob" || c.Image != o.Image || len(c.Command) != 0 {
		t.Errorf("container name %q image %q command %q", c.Name, c.Image, c.Command)
	}
	wantArgs := []string{"apply", "--auto-approve", "-f", "/etc/encjob/nightly-reencrypt.yaml", "--shards", "8",
		"--metadata-output", "s3://acme-encjob-results/runs/nightly-invoices/shard-$(JOB_COMPLETION_INDEX).jsonl",
		"--no-progress"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q\nwant   %q", c.Args, wantArgs)
	}
	wantEnv := []corev1.EnvVar{
		{Name: "TMPDIR", Value: "/tmp"},
		{Name: "AWS_REGION", Value: "eu-west-1"},
		{Name: "BUCKET", Value: "acme-invoices"},
		{Name: "NEW_KEY_ARN", Value: o.Env["NEW_KEY_ARN"]},
		{Name: "OLD_KEY_ARN", Value: o.Env["OLD_KEY_ARN"]},
	}
	if !slices.Equal(c.Env, wantEnv) {
		t.Errorf("env = %+v\nwant  %+v", c.Env, wantEnv)
	}
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETION_INDEX" {
			t.Error("the manifest sets JOB_COMPLETION_INDEX; Kubernetes must")
		}
	}
	checkQty := func(what string, l corev1.ResourceList, name corev1.ResourceName, want string) {
		q, ok := l[name]
		if !ok || q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s.%s = %v (set %v), want %s", what, name, q.String(), ok, want)
		}
	}
	checkQty("requests", c.Resources.Requests, corev1.ResourceCPU, "1")
	checkQty("requests", c.Resources.Requests, corev1.ResourceMemory, "512Mi")
	checkQty("limits", c.Resources.Limits, corev1.ResourceCPU, "2")
	checkQty("limits", c.Resources.Limits, corev1.ResourceMemory, "1Gi")
	if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged != nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		len(sc.Capabilities.Add) != 0 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", sc)
	}

	// The spec ConfigMap is mounted read-only where the args point.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts["spec"]; m.MountPath != "/etc/encjob" || !m.ReadOnly {
		t.Errorf("spec mount = %+v", m)
	}
	if m := mounts["tmp"]; m.MountPath != "/tmp" || m.ReadOnly {
		t.Errorf("tmp mount = %+v", m)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if len(vols) != 2 || len(c.VolumeMounts) != 2 {
		t.Errorf("volumes %d, mounts %d, want 2 each", len(vols), len(c.VolumeMounts))
	}
	if v := vols["spec"].ConfigMap; v == nil || v.Name != cm.Name || len(v.Items) != 1 ||
		v.Items[0].Key != "nightly-reencrypt.yaml" || v.Items[0].Path != "nightly-reencrypt.yaml" ||
		v.DefaultMode == nil || *v.DefaultMode != 0o444 {
		t.Errorf("spec volume = %+v", v)
	}
	if vols["tmp"].EmptyDir == nil {
		t.Errorf("tmp volume = %+v, want an emptyDir", vols["tmp"])
	}
}

func TestDefaults(t *testing.T) {
	o := Options{
		Name:           "enc",
		Image:          "encjob:dev",
		Shards:         3,
		SpecYAML:       []byte("kind: EncryptionJob\n"),
		MetadataPrefix: "/shared/results/",
		ItemsPrefix:    "s3://runs/enc/items/",
		ExtraArgs:      []string{"-v"},
	}
	cm, job := decode(t, render(t, o))
	if cm.Namespace != "" || job.Namespace != "" {
		t.Error("namespace set though none was given")
	}
	if _, ok := cm.Data["job.yaml"]; !ok {
		t.Errorf("configmap keys %v, want job.yaml", cm.Data)
	}
	s := job.Spec
	if *s.Parallelism != 3 || *s.BackoffLimitPerIndex != 0 || s.MaxFailedIndexes != nil {
		t.Errorf("parallelism %d backoffLimitPerIndex %d maxFailedIndexes %v; want 3, 0, unset",
			*s.Parallelism, *s.BackoffLimitPerIndex, s.MaxFailedIndexes)
	}
	pod := s.Template.Spec
	if pod.ServiceAccountName != "" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	c := pod.Containers[0]
	if c.Resources.Requests != nil || c.Resources.Limits != nil {
		t.Errorf("resources = %+v, want none", c.Resources)
	}
	wantArgs := []string{"apply", "--auto-approve", "-f", "/etc/encjob/job.yaml", "--shards", "3",
		"--metadata-output", "/shared/results/shard-$(JOB_COMPLETION_INDEX).jsonl",
		"--items", "s3://runs/enc/items/", "-v"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q\nwant   %q", c.Args, wantArgs)
	}
}

func TestValidate(t *testing.T) {
	type mod func(*Options)
	cases := []struct {
		name  string
		mod   mod
		field string
		typ   spec.ErrorType
	}{
		{"no name", func(o *Options) { o.Name = "" }, "name", spec.ErrorTypeRequired},
		{"upper-case name", func(o *Options) { o.Name = "Nightly" }, "name", spec.ErrorTypeInvalid},
		{"dotted name", func(o *Options) { o.Name = "a.b" }, "name", spec.ErrorTypeInvalid},
		{"name too long for the index", func(o *Options) { o.Name = strings.Repeat("a", 62) }, "name", spec.ErrorTypeInvalid},
		{"bad namespace", func(o *Options) { o.Namespace = "Billing" }, "namespace", spec.ErrorTypeInvalid},
		{"no image", func(o *Options) { o.Image = "" }, "image", spec.ErrorTypeRequired},
		{"image with space", func(o *Options) { o.Image = "encjob :1" }, "image", spec.ErrorTypeInvalid},
		{"zero shards", func(o *Options) { o.Shards = 0 }, "shards", spec.ErrorTypeInvalid},
		{"too many shards", func(o *Options) { o.Shards = MaxShards + 1 }, "shards", spec.ErrorTypeInvalid},
		{"parallelism above shards", func(o *Options) { o.Parallelism = 9 }, "parallelism", spec.ErrorTypeInvalid},
		{"negative parallelism", func(o *Options) { o.Parallelism = -1 }, "parallelism", spec.ErrorTypeInvalid},
		{"no spec", func(o *Options) { o.SpecYAML = nil }, "specYAML", spec.ErrorTypeRequired},
		{"binary spec", func(o *Options) { o.SpecYAML = []byte{0xff, 0xfe} }, "specYAML", spec.ErrorTypeInvalid},
		{"huge spec", func(o *Options) { o.SpecYAML = bytes.Repeat([]byte("#"), 2<<20) }, "specYAML", spec.ErrorTypeInvalid},
		{"spec file name with slash", func(o *Options) { o.SpecFileName = "a/b.yaml" }, "specFileName", spec.ErrorTypeInvalid},
		{"bad service account", func(o *Options) { o.ServiceAccount = "Enc Job" }, "serviceAccount", spec.ErrorTypeInvalid},
		{"bad cpu", func(o *Options) { o.Requests.CPU = "lots" }, "requests.cpu", spec.ErrorTypeInvalid},
		{"zero memory", func(o *Options) { o.Limits.Memory = "0" }, "limits.memory", spec.ErrorTypeInvalid},
		{"request above limit", func(o *Options) { o.Requests.Memory = "2Gi" }, "requests.memory", spec.ErrorTypeInvalid},
		{"negative backoff", func(o *Options) { o.BackoffLimitPerIndex = -1 }, "backoffLimitPerIndex", spec.ErrorTypeInvalid},
		{"max failed above shards", func(o *Options) { o.MaxFailedIndexes = new(int32(9)) }, "maxFailedIndexes", spec.ErrorTypeInvalid},
		{"no prefix", func(o *Options) { o.MetadataPrefix = "" }, "metadataPrefix", spec.ErrorTypeRequired},
		{"relative prefix", func(o *Options) { o.MetadataPrefix = "results/" }, "metadataPrefix", spec.ErrorTypeInvalid},
		{"prefix without bucket", func(o *Options) { o.MetadataPrefix = "s3:///" }, "metadataPrefix", spec.ErrorTypeInvalid},
		{"prefix with $", func(o *Options) { o.MetadataPrefix = "s3://b/$(RUN)/" }, "metadataPrefix", spec.ErrorTypeInvalid},
		{"relative items prefix", func(o *Options) { o.ItemsPrefix = "items/" }, "itemsPrefix", spec.ErrorTypeInvalid},
		{"items prefix without bucket", func(o *Options) { o.ItemsPrefix = "s3://" }, "itemsPrefix", spec.ErrorTypeInvalid},
		{"env sets the index", func(o *Options) { o.Env["JOB_COMPLETION_INDEX"] = "0" }, "env.JOB_COMPLETION_INDEX", spec.ErrorTypeForbidden},
		{"bad env name", func(o *Options) { o.Env["1X"] = "v" }, "env.1X", spec.ErrorTypeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := exampleOptions(t)
			c.mod(&o)
			var b bytes.Buffer
			err := Render(&b, o)
			var list spec.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Render = %v, want a spec.ErrorList", err)
			}
			if len(list) != 1 || list[0].Field != c.field || list[0].Type != c.typ {
				t.Fatalf("errors = %v; want one %v at %s", err, c.typ, c.field)
			}
			if b.Len() != 0 {
				t.Error("Render wrote output for invalid options")
			}
		})
	}

	// Every problem at once.
	err := Render(&bytes.Buffer{}, Options{})
	var list spec.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Render(Options{}) = %v", err)
	}
	var fields []string
	for _, e := range list {
		fields = append(fields, e.Field)
	}
	if want := []string{"name", "image", "shards", "specYAML", "metadataPrefix"}; !slices.Equal(fields, want) {
		t.Errorf("Render(Options{}) reports %v, want %v", fields, want)
	}
}

// The manifest embeds the spec verbatim, including text that YAML would
// otherwise reinterpret.
func TestSpecRoundTrip(t *testing.T) {
	o := exampleOptions(t)
	o.SpecYAML = []byte("a: yes\nb: \"---\"\n---\nc: 'x: y' # comment\n\ttab\n  trailing  \n")
	cm, _ := decode(t, render(t, o))
	if got := cm.Data[o.SpecFileName]; got != string(o.SpecYAML) {
		t.Errorf("spec after the round trip = %q, want %q", got, o.SpecYAML)
	}
}

// docs/kubernetes.md shows the golden manifest; it must not drift.
func TestDocShowsGolden(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "nightly-reencrypt.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, append([]byte("```yaml\n"), golden...)) {
		t.Error("docs/kubernetes.md does not show testdata/nightly-reencrypt.golden.yaml verbatim; paste the new golden file into its example")
	}
}
