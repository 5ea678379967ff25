package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fault makes the emulator misbehave on matching requests. Faults are
// checked in the order they were added; every matching fault that fires
// contributes its effects (latencies add up, the first Status wins).
//
// Matching: Method, when not "" or "*", must equal the request method. Route
// "" or "*" matches every request. Otherwise Route is compared with two
// strings: the request's route pattern as recorded in RequestRecord.Route
// (e.g. "POST /repo/v1/entity/{id}/bundle2") and "METHOD path" (e.g.
// "POST /repo/v1/entity/syn123/bundle2"). A Route that starts with "/" is
// compared with the same two strings without the method. Equal strings
// match, and a Route ending in "/" also matches every string it is a prefix
// of: "PUT /s3/" matches every presigned part upload, while
// "POST /repo/v1/entity" matches only entity creation.
type Fault struct {
	Method string // "" or "*" = any method
	Route  string // see above

	// Status, when not 0, answers with this status and a Synapse-shaped
	// error body (the throttle body for 429) instead of handling the request.
	Status int
	// Prob is the probability that a matching request is affected;
	// 0 means always.
	Prob float64
	// FirstN, when > 0, limits the fault to the first N matching requests.
	FirstN int
	// Latency is waited (or until the client gives up) before handling.
	Latency time.Duration
	// Transit is waited before handling as well, but the request is then
	// handled even if the client gave up meanwhile (its answer is lost):
	// a request already on its way, which Synapse carries out after its
	// sender stopped waiting.
	Transit time.Duration
	// DropAfterBytes, when > 0, closes the connection part-way: a request
	// whose body is longer than N bytes has N bytes read and is then dropped
	// unhandled; any other request is handled and its response cut after N
	// bytes of body.
	DropAfterBytes int
	// DropAfterHandling handles the request completely (state changes are
	// kept and persisted) and then closes the connection without answering:
	// a lost answer.
	DropAfterHandling bool
	// Stall holds the response back for this long (or until the client gives
	// up) before its first byte; the request has already been handled.
	Stall time.Duration

	// Fired, when set, is called each time the fault fires, before the
	// request is delayed or handled (tests use it to act while a request
	// is on its way). Not part of a spec.
	Fired func()
}

// faultEntry is an added fault and the count of requests it has matched.
type faultEntry struct {
	id    int
	f     Fault
	count int
}

func (f *Fault) matches(method, route, path string) bool {
	if f.Method != "" && f.Method != "*" && !strings.EqualFold(f.Method, method) {
		return false
	}
	r := f.Route
	if r == "" || r == "*" {
		return true
	}
	cands := []string{route, method + " " + path}
	if strings.HasPrefix(r, "/") {
		_, rp, _ := strings.Cut(route, " ")
		cands = []string{rp, path}
	}
	for _, c := range cands {
		if c == r || (strings.HasSuffix(r, "/") && strings.HasPrefix(c, r)) {
			return true
		}
	}
	return false
}

// effects is the combination of the faults that fire on one request.
type effects struct {
	latency           time.Duration
	transit           time.Duration
	stall             time.Duration
	status            int
	dropAfterBytes    int
	dropAfterHandling bool
	fired             []func()
}

// pickFaults returns the combined effect of the faults that fire on this
// request, and how many fired.
func (s *Server) pickFaults(method, route, path string) (effects, int) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	var e effects
	fired := 0
	for _, fe := range s.faults {
		f := &fe.f
		if !f.matches(method, route, path) {
			continue
		}
		fe.count++
		if f.FirstN > 0 && fe.count > f.FirstN {
			continue
		}
		if f.Prob > 0 && s.rng.Float64() >= f.Prob {
			continue
		}
		fired++
		e.latency += f.Latency
		e.transit += f.Transit
		if f.Fired != nil {
			e.fired = append(e.fired, f.Fired)
		}
		if f.Stall > e.stall {
			e.stall = f.Stall
		}
		if e.status == 0 {
			e.status = f.Status
		}
		if e.dropAfterBytes == 0 {
			e.dropAfterBytes = f.DropAfterBytes
		}
		e.dropAfterHandling = e.dropAfterHandling || f.DropAfterHandling
	}
	return e, fired
}

// AddFault installs f and returns a function that removes it again.
func (s *Server) AddFault(f Fault) (remove func()) {
	s.fmu.Lock()
	s.nextFault++
	id := s.nextFault
	s.faults = append(s.faults, &faultEntry{id: id, f: f})
	s.fmu.Unlock()
	return func() {
		s.fmu.Lock()
		defer s.fmu.Unlock()
		for i, fe := range s.faults {
			if fe.id == id {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
				return
			}
		}
	}
}

// ParseFault parses a fault spec, the syntax of `synfs emulator --fault`:
// fields separated by ":", the first being the route (as in Fault.Route; "*"
// or "" for every request), each of the others one of
//
//	NNN                   Status (100-599)
//	p=F                   Prob, 0 < F <= 1
//	n=N                   FirstN
//	latency=DURATION      Latency (Go duration, e.g. 20ms)
//	stall=DURATION        Stall
//	transit=DURATION      Transit
//	drop-after-bytes=N    DropAfterBytes
//	drop-after-handling   DropAfterHandling
//	method=M              Method
//
// Examples: "PUT /s3/:503:p=0.2", "POST /repo/v1/entity:drop-after-handling:n=1",
// "*:latency=20ms". A spec must have at least one effect.
func ParseFault(spec string) (Fault, error) {
	fields := strings.Split(spec, ":")
	var f Fault
	if r := fields[0]; r != "*" {
		f.Route = r
	}
	bad := func(format string, a ...any) (Fault, error) {
		return Fault{}, fmt.Errorf("emulator: fault %q: %s", spec, fmt.Sprintf(format, a...))
	}
	for _, item := range fields[1:] {
		key, val, hasVal := strings.Cut(item, "=")
		switch {
		case !hasVal && item == "drop-after-handling":
			f.DropAfterHandling = true
		case !hasVal:
			n, err := strconv.Atoi(item)
			if err != nil || n < 100 || n > 599 || strconv.Itoa(n) != item {
				return bad("unknown item %q", item)
			}
			f.Status = n
		case key == "p":
			p, err := strconv.ParseFloat(val, 64)
			if err != nil || !(p > 0 && p <= 1) {
				return bad("p must be a number in (0, 1], got %q", val)
			}
			f.Prob = p
		case key == "n" || key == "drop-after-bytes":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || strconv.Itoa(n) != val {
				return bad("%s must be a positive integer, got %q", key, val)
			}
			if key == "n" {
				f.FirstN = n
			} else {
				f.DropAfterBytes = n
			}
		case key == "latency" || key == "stall" || key == "transit":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return bad("%s must be a positive duration, got %q", key, val)
			}
			switch key {
			case "latency":
				f.Latency = d
			case "stall":
				f.Stall = d
			default:
				f.Transit = d
			}
		case key == "method":
			if val == "" || strings.ContainsAny(val, " =") {
				return bad("bad method %q", val)
			}
			f.Method = val
		default:
			return bad("unknown item %q", item)
		}
	}
	if f.Status == 0 && f.Latency == 0 && f.Transit == 0 && f.Stall == 0 && f.DropAfterBytes == 0 && !f.DropAfterHandling {
		return bad("no effect (want a status, latency, transit, stall or drop)")
	}
	return f, nil
}

// String formats f as a spec that ParseFault reads back.
func (f Fault) String() string {
	r := f.Route
	if r == "" {
		r = "*"
	}
	parts := []string{r}
	if f.Status != 0 {
		parts = append(parts, strconv.Itoa(f.Status))
	}
	if f.Method != "" {
		parts = append(parts, "method="+f.Method)
	}
	if f.Prob != 0 {
		parts = append(parts, "p="+strconv.FormatFloat(f.Prob, 'g', -1, 64))
	}
	if f.FirstN != 0 {
		parts = append(parts, "n="+strconv.Itoa(f.FirstN))
	}
	if f.Latency != 0 {
		parts = append(parts, "latency="+f.Latency.String())
	}
	if f.Transit != 0 {
		parts = append(parts, "transit="+f.Transit.String())
	}
	if f.Stall != 0 {
		parts = append(parts, "stall="+f.Stall.String())
	}
	if f.DropAfterBytes != 0 {
		parts = append(parts, "drop-after-bytes="+strconv.Itoa(f.DropAfterBytes))
	}
	if f.DropAfterHandling {
		parts = append(parts, "drop-after-handling")
	}
	return strings.Join(parts, ":")
}
