package console

import (
	"context"
	"strings"
	"testing"

	"github.com/relaycdp/relay/internal/readiness"
)

type fakeReadiness readiness.Report

func (f fakeReadiness) Report(context.Context) readiness.Report { return readiness.Report(f) }

// The overview shows the same readiness /ready answers, with the full
// cause of a failing check.
func TestOverviewReadiness(t *testing.T) {
	tc := newTestConsole(t)
	s := tc.login(t)
	if _, body := s.get("/admin/"); strings.Contains(body, `id="readiness"`) {
		t.Error("readiness shown without Deps.Readiness")
	}
	tc.deps.Readiness = fakeReadiness{Ready: false,
		Checks: []readiness.Result{
			{Name: "queue", Reason: "no space left on device", Detail: "data dir not writable: write /d/.ready-probe-1: no space left on device"},
			{Name: "store", OK: true}},
		Destinations: []readiness.DestState{{Name: "klaviyo", State: "unconfigured", Problem: "no privateApiKey: deliveries cannot authenticate", Queued: 12}},
	}
	_, body := s.get("/admin/")
	for _, want := range []string{`id="ready-state">not ready<`, "503", "data dir not writable: write /d/.ready-probe-1: no space left on device",
		"unconfigured", "no privateApiKey", "12 queued"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	tc.deps.Readiness = fakeReadiness{Ready: true, Checks: []readiness.Result{{Name: "queue", OK: true}}}
	if _, body := s.get("/admin/"); !strings.Contains(body, `id="ready-state">ready<`) {
		t.Error("overview does not say ready")
	}
}
