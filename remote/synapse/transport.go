package synapse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// Body size caps. A success body larger than maxBody is refused; an error
// body is read up to maxErrBody and the rest dropped.
const (
	maxBody    = 16 << 20
	maxErrBody = 64 << 10
	maxReason  = 1024
)

// limiter bounds REST calls: sem caps calls in flight, and a token bucket
// (generic cell rate algorithm) caps calls started per minute. Synapse
// counts calls in a sliding minute, so burst plus a minute's sustained rate
// stays under the limit: a burst of a twentieth, and the rest spread over
// the minute (600 a minute: 30 at once, then 569 a minute), so that no
// call is refused with a 429.
//
// Calls that find no token wait in two queues: calls someone is waiting
// for (a listing, a stat: the default) and calls made for the background
// (remote.Background: uploads). While both wait, the first takes three
// tokens of every four (fgShare) and the background the fourth: browsing
// a large folder while thousands of files upload is not paced behind
// them, and the uploads still go on at a quarter of the budget when the
// browsing alone could spend it all (the sizes of 10,000 files).
type limiter struct {
	sem chan struct{}

	mu       sync.Mutex // protects the fields below
	tat      time.Time  // theoretical arrival time of the next call
	interval time.Duration
	burst    time.Duration
	queue    [2][]*rateWaiter // [0] foreground, [1] background; FIFO each
	armed    bool             // a dispatch is scheduled
	streak   int              // foreground grants in a row while the background waits
}

// fgShare is how many tokens in a row foreground calls take while
// background calls wait, before one goes to the background.
const fgShare = 3

// rateWaiter is one call waiting for a token.
type rateWaiter struct {
	ready   chan struct{} // closed when granted
	granted bool          // guarded by limiter.mu
}

func newLimiter(concurrent, perMinute int) *limiter {
	b := max(1, perMinute/20)
	iv := time.Minute / time.Duration(max(1, perMinute-b-1))
	return &limiter{
		sem:      make(chan struct{}, concurrent),
		interval: iv,
		burst:    iv * time.Duration(b-1),
	}
}

type admitKey struct{}

// admitWithin returns ctx, except that its calls wait for the REST limits
// (and so are sent) only while admit lasts: a call that outlives its
// caller to learn what it did (remote.Outlive) sends nothing new once the
// caller has gone.
func admitWithin(ctx, admit context.Context) context.Context {
	return context.WithValue(ctx, admitKey{}, admit)
}

// admission is the context a call on ctx waits for the REST limits with.
func admission(ctx context.Context) context.Context {
	if a, ok := ctx.Value(admitKey{}).(context.Context); ok {
		return a
	}
	return ctx
}

// acquire waits for the rate limit and then for a free slot. The caller must
// call release once the call has finished.
func (l *limiter) acquire(ctx context.Context) error {
	lane := 0
	if remote.IsBackground(ctx) {
		lane = 1
	}
	l.mu.Lock()
	if len(l.queue[0])+len(l.queue[1]) == 0 && l.takeLocked(time.Now()) {
		l.mu.Unlock()
	} else {
		w := &rateWaiter{ready: make(chan struct{})}
		l.queue[lane] = append(l.queue[lane], w)
		l.armLocked(time.Now())
		l.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			l.mu.Lock()
			if !w.granted {
				l.queue[lane] = slices.DeleteFunc(l.queue[lane], func(x *rateWaiter) bool { return x == w })
			}
			l.mu.Unlock()
			return ctx.Err() // a token granted meanwhile is spent unused
		}
	}
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeLocked takes a token if one is due at now.
func (l *limiter) takeLocked(now time.Time) bool {
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > l.burst {
		return false
	}
	l.tat = tat.Add(l.interval)
	return true
}

// armLocked schedules a dispatch for when the next token is due, unless
// one is scheduled.
func (l *limiter) armLocked(now time.Time) {
	if l.armed {
		return
	}
	l.armed = true
	time.AfterFunc(max(l.tat.Sub(now)-l.burst, 0), l.dispatch)
}

// dispatch grants the tokens due to the waiters, foreground first.
func (l *limiter) dispatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	now := time.Now()
	for len(l.queue[0])+len(l.queue[1]) > 0 && l.takeLocked(now) {
		lane := 0
		switch {
		case len(l.queue[0]) == 0:
			lane = 1
		case len(l.queue[1]) == 0:
			l.streak = 0
		case l.streak >= fgShare:
			lane, l.streak = 1, 0
		default:
			l.streak++
		}
		w := l.queue[lane][0]
		l.queue[lane] = l.queue[lane][1:]
		w.granted = true
		close(w.ready)
	}
	if len(l.queue[0])+len(l.queue[1]) > 0 {
		l.armLocked(now)
	}
}

func (l *limiter) release() { <-l.sem }

// backoff returns the wait before retry number attempt (from 0): the
// exponential step capped at RetryCap, times a random factor in [0.5, 1.5),
// raised to retryAfter when the server asked for more, and capped again.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := c.cfg.RetryBase
	for i := 0; i < attempt && d < c.cfg.RetryCap; i++ {
		d *= 2
	}
	d = min(d, c.cfg.RetryCap)
	d = time.Duration(float64(d) * (0.5 + rand.Float64()))
	d = max(d, retryAfter)
	return min(d, c.cfg.RetryCap)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// retryableStatus reports whether a response status is worth retrying.
func retryableStatus(s int) bool {
	switch s {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// notSent reports whether a transport error happened before the request
// could have reached the server (a failed dial).
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// scrub removes the token from s.
func (c *Client) scrub(s string) string {
	for _, t := range c.tokens.all() {
		s = strings.ReplaceAll(s, t, "[token]")
	}
	return s
}

// newError returns a *remote.Error with op and reason scrubbed of the token.
func (c *Client) newError(op string, status int, reason string, kind error) *remote.Error {
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "..."
	}
	return &remote.Error{Op: c.scrub(op), Status: status, Reason: c.scrub(reason), Kind: kind}
}

// transportError wraps a failed round trip. url.Error is unwrapped so that
// the message does not repeat the URL.
func (c *Client) transportError(op string, err error) *remote.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return c.newError(op, 0, err.Error(), remote.ErrTransient)
}

// canceled wraps a context error so that errors.Is(err, context.Canceled)
// (or DeadlineExceeded) holds.
func canceled(op string, err error) error {
	return fmt.Errorf("%s: %w", op, err)
}

// statusError builds the error for a non-2xx response.
func (c *Client) statusError(op string, status int, body []byte) *remote.Error {
	reason := ParseReason(body)
	if reason == "" {
		reason = http.StatusText(status)
	}
	return c.newError(op, status, reason, remote.KindOf(status, reason))
}

// ParseReason returns the "reason" of a Synapse error body; for an S3 XML
// error, its Message; otherwise the body's first line of text (at most 200
// bytes), or "" for other JSON. It never
// panics, whatever the input.
func ParseReason(body []byte) string {
	var e ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Reason != "" {
		return strings.TrimSpace(e.Reason)
	}
	if json.Valid(body) {
		return ""
	}
	s := string(body)
	// S3 answers with XML: <Error><Code>..</Code><Message>..</Message>.
	if i := strings.Index(s, "<Message>"); i >= 0 {
		s = s[i+len("<Message>"):]
		if j := strings.Index(s, "</Message>"); j >= 0 {
			s = s[:j]
		}
	}
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.ToValidUTF8(strings.TrimSpace(s), "?")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// call is one Synapse REST request.
type call struct {
	method string
	base   string // c.repo or c.file
	path   string // "/entity/syn1"
	query  url.Values
	body   any // sent as JSON when not nil
	out    any // a 2xx body is decoded into it when not nil

	// once marks a request that must not be re-sent after it may have
	// reached the server (creating an entity). It is retried only when the
	// server certainly did not act: a throttle (429) or a failed dial. Any
	// other transient failure returns ErrTransient, and the caller finds out
	// what happened before trying again.
	once bool
}

func (cl *call) op() string { return cl.method + " " + cl.path }

// rest runs cl with retries and returns nil or an error: a *remote.Error, or
// a wrapped context error.
func (c *Client) rest(ctx context.Context, cl call) error {
	op := cl.op()
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return c.newError(op, 0, "encoding request: "+err.Error(), remote.ErrInvalid)
		}
		payload = b
	}
	for attempt := 0; ; attempt++ {
		if !c.conn.Online() {
			return c.conn.Err(op)
		}
		admit := admission(ctx)
		if err := c.limit.acquire(admit); err != nil {
			return canceled(op, err)
		}
		if err := admit.Err(); err != nil {
			c.limit.release()
			return canceled(op, err)
		}
		status, hdr, body, err := c.roundTrip(ctx, &cl, payload)
		c.limit.release()
		c.report(ctx, op, status, body, err)
		var last *remote.Error
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return canceled(op, ctx.Err())
			}
			last = c.transportError(op, err)
			if cl.once && !notSent(err) {
				return last
			}
		case status >= 200 && status < 300:
			if cl.out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, cl.out); err != nil {
				return c.newError(op, status, "malformed response body: "+err.Error(), remote.ErrInvalid)
			}
			return nil
		default:
			last = c.statusError(op, status, body)
			if !retryableStatus(status) || (cl.once && status != http.StatusTooManyRequests) {
				return last
			}
			wait = retryAfter(hdr, c.now())
		}
		if attempt >= c.cfg.MaxRetries {
			return last
		}
		if !c.conn.Online() {
			return c.conn.Err(op) // this failure made Synapse unreachable: no retry
		}
		d := c.backoff(attempt, wait)
		c.log.LogAttrs(ctx, slogWarn, "synapse: retrying", attrOp(op), attrErr(last), attrAttempt(attempt+1), attrWait(d))
		if err := remote.Sleep(ctx, d); err != nil {
			return canceled(op, err)
		}
	}
}

// report tells the connectivity tracker how one REST attempt went: an
// answer other than a gateway's or an unavailable service's means Synapse
// is reachable (a 500 is about one request, not the service).
func (c *Client) report(ctx context.Context, op string, status int, body []byte, err error) {
	switch {
	case c.conn == nil:
	case err == nil && status == http.StatusUnauthorized:
		c.conn.Refused(fmt.Sprintf("%d %s", status, c.statusError(op, status, body).Reason))
	case err != nil:
		if ctx.Err() == nil {
			c.conn.Failed(c.scrub(err.Error()), notSent(err))
		}
	case unavailable(status):
		c.conn.Failed(fmt.Sprintf("%d %s", status, http.StatusText(status)), false)
	default:
		c.conn.Succeeded()
	}
}

// unavailable reports whether status says the service, not the request,
// failed: 502, 503 (Synapse's maintenance answer), 504.
func unavailable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// Probe asks Synapse for its version (GET /version, without retries),
// the cheapest call there is. It returns nil when Synapse answers with
// anything but a server failure: that is what Connectivity.Run needs to
// know.
func (c *Client) Probe(ctx context.Context) error {
	cl := call{method: http.MethodGet, base: c.repo, path: "/version"}
	if err := c.limit.acquire(ctx); err != nil {
		return canceled(cl.op(), err)
	}
	status, _, body, err := c.roundTrip(ctx, &cl, nil)
	c.limit.release()
	switch {
	case err != nil:
		return c.transportError(cl.op(), err)
	case unavailable(status), status == http.StatusUnauthorized:
		return c.statusError(cl.op(), status, body)
	}
	return nil
}

// roundTrip sends one REST request and reads the whole response body.
func (c *Client) roundTrip(ctx context.Context, cl *call, payload []byte) (int, http.Header, []byte, error) {
	u := cl.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if t := c.tokens.current(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	req.Header.Set("Accept", "application/json; charset=UTF-8")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	limit := int64(maxErrBody)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		limit = maxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if int64(len(b)) > limit {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return 0, nil, nil, fmt.Errorf("response body larger than %d bytes", limit)
		}
		b = b[:limit]
	}
	return resp.StatusCode, resp.Header, b, nil
}

// presigned sends a request to a presigned URL (no token, no REST limits)
// with retries on 429, 5xx and transport errors. body, when not nil, makes a
// fresh request body for each attempt. A non-retryable status, or the last
// retryable one, is returned as a response the caller inspects (2xx, 403,
// 416, ...) unless it is a transport failure. The caller closes the body.
func (c *Client) presigned(ctx context.Context, op, method, rawURL string, hdr http.Header, body func() io.ReadCloser, length int64) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var rb io.ReadCloser
		if body != nil {
			rb = body()
		}
		req, err := http.NewRequestWithContext(ctx, method, rawURL, rb)
		if err != nil {
			if rb != nil {
				rb.Close()
			}
			return nil, c.newError(op, 0, "bad presigned URL", remote.ErrInvalid)
		}
		if body != nil {
			req.ContentLength = length
			req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
			if length == 0 {
				req.Body = http.NoBody
			}
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("User-Agent", c.cfg.UserAgent)
		var last *remote.Error
		var wait time.Duration
		resp, err := c.hc.Do(req)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, canceled(op, ctx.Err())
			}
			last = c.transportError(op, err)
		case retryableStatus(resp.StatusCode):
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
			resp.Body.Close()
			last = c.statusError(op, resp.StatusCode, b)
			wait = retryAfter(resp.Header, c.now())
			if attempt >= c.cfg.MaxRetries {
				return nil, last
			}
		default:
			return resp, nil
		}
		if attempt >= c.cfg.MaxRetries {
			return nil, last
		}
		if !c.conn.Online() {
			return nil, last // Synapse is unreachable: the upload waits for it
		}
		d := c.backoff(attempt, wait)
		c.log.LogAttrs(ctx, slogWarn, "synapse: retrying transfer", attrOp(op), attrErr(last), attrAttempt(attempt+1), attrWait(d))
		if err := remote.Sleep(ctx, d); err != nil {
			return nil, canceled(op, err)
		}
	}
}
