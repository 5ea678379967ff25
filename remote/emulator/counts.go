package emulator

import (
	"net/http"
	"strings"
)

// adminBase is where the emulator's own endpoints live. They are not part
// of Synapse's API: they need no token, are never throttled or faulted
// differently from other routes, and are not counted as REST calls.
const adminBase = "/emulator/v1"

// isREST reports whether a route pattern is a Synapse REST call: everything
// but the presigned transfers ("/s3/..."), the probe ("/") and the
// emulator's own admin endpoints. Only REST calls count against Synapse's
// per-user budget (about 600 a minute, 3 at a time).
func isREST(pattern string) bool {
	return pattern != "/" && !strings.HasPrefix(pattern, "/s3/") && !strings.HasPrefix(pattern, adminBase)
}

// RequestCounts is how many REST calls the emulator answered, by route
// pattern ("POST /repo/v1/entity/children"), since New or the last
// ResetRequestCounts. Throttled and faulted answers count: Synapse charges
// them too. Presigned transfers are not REST calls and are not counted.
type RequestCounts map[string]int

// Total returns the sum over all routes.
func (c RequestCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Sub returns the counts in c that are not in before (c minus before),
// leaving out routes whose difference is zero.
func (c RequestCounts) Sub(before RequestCounts) RequestCounts {
	out := RequestCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// RequestCounts returns a copy of the REST call counters.
func (s *Server) RequestCounts() RequestCounts {
	s.smu.Lock()
	defer s.smu.Unlock()
	out := make(RequestCounts, len(s.restCounts))
	for k, v := range s.restCounts {
		out[k] = v
	}
	return out
}

// ResetRequestCounts sets every REST call counter to zero. Stats.Requests
// is not affected.
func (s *Server) ResetRequestCounts() {
	s.smu.Lock()
	s.restCounts = map[string]int{}
	s.smu.Unlock()
}

// countRESTLocked counts one answered request of route. Caller holds s.smu.
func (s *Server) countRESTLocked(route string) {
	if i := strings.IndexByte(route, ' '); i < 0 || !isREST(route[i+1:]) {
		return
	}
	if s.restCounts == nil {
		s.restCounts = map[string]int{}
	}
	s.restCounts[route]++
}

func (s *Server) adminRoutes(add func(method, pattern string, h handler)) {
	add("GET", adminBase+"/requests", s.hRequestCounts)
	add("DELETE", adminBase+"/requests", s.hResetRequestCounts)
}

// hRequestCounts answers {"total": N, "routes": {"POST /repo/v1/entity/children": n, ...}}.
func (s *Server) hRequestCounts(c *call) error {
	counts := s.RequestCounts()
	return c.reply(http.StatusOK, map[string]any{"total": counts.Total(), "routes": counts})
}

func (s *Server) hResetRequestCounts(c *call) error {
	s.ResetRequestCounts()
	return c.reply(http.StatusNoContent, nil)
}
