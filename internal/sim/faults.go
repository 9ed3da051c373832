package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Faults are the failures the simulator injects. Rates are fractions of
// requests (0 = never, 1 = always) drawn independently per request, checked
// in this order: reset, timeout, error, storm; Latency is added to every
// request the faults apply to. In JSON, durations are strings ("50ms") or
// nanoseconds:
//
//	{"error_rate":0.1,"latency":"50ms","timeout_rate":0,"timeout_hold":"",
//	 "reset_rate":0,"storm":{"rate":1,"retry_after":3,"for":"10s"},
//	 "endpoints":["POST /api/events"]}
type Faults struct {
	// ErrorRate answers that fraction of requests 500 or 503 (alternately at
	// random) in Klaviyo's error format, without applying them.
	ErrorRate float64 `json:"error_rate"`
	// Latency is added before every request is handled.
	Latency time.Duration `json:"latency"`
	// Storm answers 429 with Retry-After, as if the account's rate limit
	// were exhausted by someone else.
	Storm Storm `json:"storm"`
	// TimeoutRate holds that fraction of requests without answering until
	// the client gives up (its context or connection ends), TimeoutHold
	// passes (then 504), or the simulator closes. The request is not applied.
	TimeoutRate float64 `json:"timeout_rate"`
	// TimeoutHold bounds how long a timed-out request is held; 0 means until
	// the client gives up.
	TimeoutHold time.Duration `json:"timeout_hold"`
	// ResetRate closes the connection of that fraction of requests without
	// an answer (the client sees a connection error). Not applied. Behind
	// an http.Server only: without a hijackable connection the handler
	// panics with http.ErrAbortHandler, which net/http turns into a reset.
	ResetRate float64 `json:"reset_rate"`
	// Endpoints limits faults to these endpoints, each "METHOD /template"
	// (e.g. "POST /api/events") or just "/template". Empty means all.
	Endpoints []string `json:"endpoints,omitempty"`
}

// Storm is a 429 storm.
type Storm struct {
	// Rate is the fraction of requests answered 429 while the storm lasts.
	Rate float64 `json:"rate"`
	// RetryAfter is the Retry-After header value in seconds (at least 1).
	RetryAfter int `json:"retry_after"`
	// For is how long the storm lasts after the faults are set; 0 means
	// until the faults change.
	For time.Duration `json:"for"`
}

type faultsJSON struct {
	ErrorRate   float64   `json:"error_rate"`
	Latency     jsonDur   `json:"latency"`
	Storm       stormJSON `json:"storm"`
	TimeoutRate float64   `json:"timeout_rate"`
	TimeoutHold jsonDur   `json:"timeout_hold"`
	ResetRate   float64   `json:"reset_rate"`
	Endpoints   []string  `json:"endpoints,omitempty"`
}

type stormJSON struct {
	Rate       float64 `json:"rate"`
	RetryAfter int     `json:"retry_after"`
	For        jsonDur `json:"for"`
}

// jsonDur is a duration written as "1.5s" and read from "1.5s" or a number
// of nanoseconds.
type jsonDur time.Duration

func (d jsonDur) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDur) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = jsonDur(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"50ms\" or nanoseconds: %s", b)
	}
	*d = jsonDur(n)
	return nil
}

// MarshalJSON writes durations as strings ("50ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		ErrorRate: f.ErrorRate, Latency: jsonDur(f.Latency),
		Storm:       stormJSON{Rate: f.Storm.Rate, RetryAfter: f.Storm.RetryAfter, For: jsonDur(f.Storm.For)},
		TimeoutRate: f.TimeoutRate, TimeoutHold: jsonDur(f.TimeoutHold),
		ResetRate: f.ResetRate, Endpoints: f.Endpoints,
	})
}

// UnmarshalJSON reads durations as strings or nanoseconds and rejects
// unknown fields.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	*f = Faults{
		ErrorRate: j.ErrorRate, Latency: time.Duration(j.Latency),
		Storm:       Storm{Rate: j.Storm.Rate, RetryAfter: j.Storm.RetryAfter, For: time.Duration(j.Storm.For)},
		TimeoutRate: j.TimeoutRate, TimeoutHold: time.Duration(j.TimeoutHold),
		ResetRate: j.ResetRate, Endpoints: j.Endpoints,
	}
	return f.validate()
}

func (f Faults) validate() error {
	var errs []error
	for name, r := range map[string]float64{"error_rate": f.ErrorRate, "timeout_rate": f.TimeoutRate,
		"reset_rate": f.ResetRate, "storm.rate": f.Storm.Rate} {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s %v is not a fraction between 0 and 1", name, r))
		}
	}
	if f.Latency < 0 || f.TimeoutHold < 0 || f.Storm.For < 0 {
		errs = append(errs, errors.New("latency, timeout_hold and storm.for must not be negative"))
	}
	if f.Storm.RetryAfter < 0 {
		errs = append(errs, errors.New("storm.retry_after must not be negative"))
	}
	return errors.Join(errs...)
}

// fault is what to do to one request.
type fault int

const (
	faultNone fault = iota
	faultReset
	faultTimeout
	faultError
	faultStorm
)

func (f fault) String() string {
	return [...]string{"", "reset", "timeout", "error", "storm"}[f]
}

func (f Faults) applies(method, tmpl string) bool {
	if len(f.Endpoints) == 0 {
		return true
	}
	for _, e := range f.Endpoints {
		if e == tmpl || e == method+" "+tmpl {
			return true
		}
	}
	return false
}

// decide draws the fault for one request.
func (s *Sim) decide(method, tmpl string) (Faults, fault) {
	s.fmu.Lock()
	f, setAt := s.faults, s.faultsSetAt
	s.fmu.Unlock()
	if !f.applies(method, tmpl) {
		return Faults{}, faultNone
	}
	hit := func(rate float64) bool { return rate > 0 && (rate >= 1 || rand.Float64() < rate) }
	switch {
	case hit(f.ResetRate):
		return f, faultReset
	case hit(f.TimeoutRate):
		return f, faultTimeout
	case hit(f.ErrorRate):
		return f, faultError
	case f.Storm.Rate > 0 && (f.Storm.For == 0 || s.now().Before(setAt.Add(f.Storm.For))) && hit(f.Storm.Rate):
		return f, faultStorm
	}
	return f, faultNone
}
