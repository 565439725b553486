package kmsemu

import (
	"encoding/json"
	"io"
	"net/http"
)

// serveAdmin serves the admin endpoint documented in the package comment.
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, msg string) { reply(status, map[string]string{"error": msg}) }
	method := map[string]string{
		"/_emu/calls": http.MethodGet, "/_emu/reset": http.MethodPost,
		"/_emu/keys": http.MethodGet, "/_emu/faults": "",
	}
	want, known := method[r.URL.Path]
	switch {
	case !known:
		fail(http.StatusNotFound, "unknown admin path "+r.URL.Path+"; use /_emu/calls, /_emu/reset, /_emu/faults or /_emu/keys")
		return
	case want != "" && r.Method != want:
		w.Header().Set("Allow", want)
		fail(http.StatusMethodNotAllowed, r.URL.Path+" takes "+want)
		return
	}
	switch r.URL.Path {
	case "/_emu/calls":
		reply(http.StatusOK, e.Calls())
	case "/_emu/reset":
		e.ResetCalls()
		w.WriteHeader(http.StatusNoContent)
	case "/_emu/keys":
		reply(http.StatusOK, e.Keys())
	case "/_emu/faults":
		switch r.Method {
		case http.MethodGet:
			reply(http.StatusOK, e.CurrentFaults())
		case http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
			if err != nil {
				fail(http.StatusBadRequest, "read body: "+err.Error())
				return
			}
			var f Faults
			if err := json.Unmarshal(body, &f); err != nil {
				fail(http.StatusBadRequest, "faults: "+err.Error())
				return
			}
			if err := f.Validate(); err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
			e.SetFaults(f)
			reply(http.StatusOK, f)
		default:
			w.Header().Set("Allow", "GET, POST")
			fail(http.StatusMethodNotAllowed, "/_emu/faults takes GET or POST")
		}
	}
}
