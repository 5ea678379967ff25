package synapse

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// Production base URLs of Synapse's three REST services.
const (
	DefaultRepoEndpoint = "https://repo-prod.prod.sagebase.org/repo/v1"
	DefaultFileEndpoint = "https://file-prod.prod.sagebase.org/file/v1"
	DefaultAuthEndpoint = "https://auth-prod.prod.sagebase.org/auth/v1"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultMaxConcurrent   = 3
	DefaultRatePerMinute   = 600
	DefaultPartConcurrency = 8
	DefaultMaxRetries      = 10
	DefaultRetryBase       = 250 * time.Millisecond
	DefaultRetryCap        = 30 * time.Second
	DefaultUserAgent       = "synfs"
)

// Config configures a Client. Zero fields take the defaults named in their
// comments.
type Config struct {
	// RepoEndpoint, FileEndpoint and AuthEndpoint are full base URLs,
	// including /repo/v1, /file/v1 and /auth/v1. Empty means production
	// (DefaultRepoEndpoint, ...). Endpoints builds all three from one base.
	RepoEndpoint, FileEndpoint, AuthEndpoint string

	// Token is the personal access token sent as a bearer token on every
	// REST call. It is never sent to presigned URLs, and never appears in
	// errors or logs. Empty means anonymous.
	Token string

	// HTTPClient carries every request. Nil means a client tuned for
	// parallel part transfers (keep-alive, many idle connections per host,
	// dial and header timeouts, no overall timeout).
	HTTPClient *http.Client

	// MaxConcurrent caps Synapse REST calls in flight (default 3, Synapse's
	// per-user limit). Presigned PUTs and GETs are not counted.
	MaxConcurrent int
	// RatePerMinute caps Synapse REST calls started per minute (default
	// 600). Presigned PUTs and GETs are not counted.
	RatePerMinute int
	// PartConcurrency is the number of parts in flight per upload (default 8).
	PartConcurrency int

	// MaxRetries is how many times a failed call is retried after the first
	// attempt (default 10; negative means none). RetryBase and RetryCap bound
	// the exponential backoff between attempts (defaults 250ms and 30s).
	MaxRetries int
	RetryBase  time.Duration
	RetryCap   time.Duration

	// Logger receives retry and progress records. Nil discards them.
	Logger *slog.Logger
	// UserAgent is sent on every request (default "synfs").
	UserAgent string
	// Now returns the current time; nil means time.Now. It decides when a
	// presigned URL is close enough to expiry to be refreshed.
	Now func() time.Time

	// Connectivity, when set, learns the outcome of every REST attempt, and
	// while it says Synapse is unreachable every REST call and retry fails
	// at once with remote.ErrOffline instead of being sent. Run it with
	// Client.Probe, which is what brings it back online.
	Connectivity *remote.Connectivity
}

// Endpoints returns the repo, file and auth base URLs of a Synapse stack
// served at base, e.g. "http://127.0.0.1:8080" gives
// "http://127.0.0.1:8080/repo/v1", ".../file/v1" and ".../auth/v1".
func Endpoints(base string) (repo, file, auth string) {
	base = strings.TrimRight(base, "/")
	return base + "/repo/v1", base + "/file/v1", base + "/auth/v1"
}

// Client talks to Synapse's REST API. It implements remote.Client and also
// exports lower-level calls that map one to one onto REST endpoints. A
// Client is safe for concurrent use.
type Client struct {
	cfg       Config
	repo      string
	file      string
	auth      string
	hc        *http.Client
	log       *slog.Logger
	now       func() time.Time
	limit     *limiter
	conn      *remote.Connectivity
	tokens    tokens
	dests     sync.Map // container ID → *UploadDestination
	destCalls sync.Map // container ID → *destCall
}

var _ remote.Client = (*Client)(nil)

// New returns a Client for c, with defaults filled in.
func New(c Config) (*Client, error) {
	if c.RepoEndpoint == "" {
		c.RepoEndpoint = DefaultRepoEndpoint
	}
	if c.FileEndpoint == "" {
		c.FileEndpoint = DefaultFileEndpoint
	}
	if c.AuthEndpoint == "" {
		c.AuthEndpoint = DefaultAuthEndpoint
	}
	for _, e := range []string{c.RepoEndpoint, c.FileEndpoint, c.AuthEndpoint} {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return nil, errors.New("synapse: endpoint must be an http or https URL: " + e)
		}
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return nil, errors.New("synapse: token contains a line break")
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.RatePerMinute <= 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = DefaultPartConcurrency
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryCap <= 0 {
		c.RetryCap = DefaultRetryCap
	}
	if c.RetryCap < c.RetryBase {
		c.RetryCap = c.RetryBase
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	cl := &Client{
		cfg:   c,
		repo:  strings.TrimRight(c.RepoEndpoint, "/"),
		file:  strings.TrimRight(c.FileEndpoint, "/"),
		auth:  strings.TrimRight(c.AuthEndpoint, "/"),
		hc:    c.HTTPClient,
		log:   c.Logger,
		now:   c.Now,
		limit: newLimiter(c.MaxConcurrent, c.RatePerMinute),
		conn:  c.Connectivity,
	}
	cl.tokens.set(c.Token)
	if cl.hc == nil {
		cl.hc = defaultHTTPClient(c.PartConcurrency)
	}
	if cl.log == nil {
		cl.log = slog.New(slog.DiscardHandler)
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	return cl, nil
}

// defaultHTTPClient returns an http.Client whose transport keeps enough idle
// connections for parallel part transfers. It sets no overall timeout, which
// would cut long downloads; the dial, TLS and response-header timeouts catch
// dead peers instead.
func defaultHTTPClient(parts int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = max(64, 4*parts)
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 70 * time.Second
	t.ExpectContinueTimeout = time.Second
	return &http.Client{Transport: t}
}
