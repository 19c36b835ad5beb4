package qrngtest

import (
	"net/http"
	"time"
)

// Fault changes how the emulator answers the next matching request(s).
// Faults queue up per endpoint and are used in order.
type Fault struct {
	// Path is the endpoint affected. Default PathRandomNumbers.
	Path string
	// Times is how many requests the fault applies to. Default 1;
	// negative means until ClearFaults.
	Times int

	// Status, when set, answers with this status and Body instead of the
	// endpoint's answer, with Retry-After set to RetryAfter if not empty.
	Status     int
	Body       string
	RetryAfter string

	Latency  time.Duration // wait before answering
	SlowBody time.Duration // pause after each 16 KiB of the body
	Reset    bool          // close the connection without an answer

	// Faults of a 200 answer from the random-numbers endpoint.
	Truncate   bool // stop halfway through the body and close the connection
	WrongCount int  // send this many values more (or fewer, if negative)
	OutOfRange bool // one value equal to 2^n_bits
	Malformed  bool // a body that is not a JSON array of integers
	Endless    bool // an array that never ends
	ZeroValues bool // every value zero
	Replay     bool // repeat the previous batch's values from its first (verbatim for a request of the same count)
	Wrap       bool // answer {"data": [...]} rather than a bare array
}

// Inject queues faults.
func (e *Emulator) Inject(faults ...Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range faults {
		if f.Path == "" {
			f.Path = PathRandomNumbers
		}
		if f.Times == 0 {
			f.Times = 1
		}
		e.faults = append(e.faults, f)
	}
}

// ClearFaults drops every queued fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

// nextFault takes the first fault queued for path; the caller holds e.mu.
func (e *Emulator) nextFault(path string) (Fault, bool) {
	for i, f := range e.faults {
		if f.Path != path {
			continue
		}
		if f.Times > 0 {
			e.faults[i].Times--
			if e.faults[i].Times == 0 {
				e.faults = append(e.faults[:i], e.faults[i+1:]...)
			}
		}
		return f, true
	}
	return Fault{}, false
}

// preamble applies latency, resets and scripted statuses. It reports
// whether the endpoint should go on to answer.
func (e *Emulator) preamble(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Latency > 0 && !e.pause(r, f.Latency) {
		return false
	}
	if f.Reset {
		panic(http.ErrAbortHandler)
	}
	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		w.Write([]byte(f.Body))
		return false
	}
	return true
}
