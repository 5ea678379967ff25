package synapse

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/synfs/synfs/remote"
)

// tokens holds the access token sent with every REST call, and every token
// this client has held, so that none of them ever appears in an error or a
// log line, also after SetToken replaced it.
type tokens struct {
	mu   sync.RWMutex
	cur  string
	seen []string
}

func (t *tokens) set(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur = tok
	if tok != "" {
		for _, s := range t.seen {
			if s == tok {
				return
			}
		}
		t.seen = append(t.seen, tok)
	}
}

func (t *tokens) current() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.cur
}

func (t *tokens) all() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.seen
}

// SetToken replaces the access token sent with every later call: a mount
// whose token Synapse refused picks up the one the user configured since.
func (c *Client) SetToken(tok string) error {
	if strings.ContainsAny(tok, "\r\n") {
		return errors.New("synapse: token contains a line break")
	}
	c.tokens.set(tok)
	return nil
}

// ProbeToken asks Synapse whose the current token is (GET /userProfile),
// once, without retries, also while the Connectivity tracker holds calls
// back: Connectivity.Run uses it, while Synapse refuses the token, to find
// out when a valid one is configured. It returns the user's ID.
func (c *Client) ProbeToken(ctx context.Context) (string, error) {
	cl := call{method: http.MethodGet, base: c.repo, path: "/userProfile"}
	if err := c.limit.acquire(ctx); err != nil {
		return "", canceled(cl.op(), err)
	}
	status, _, body, err := c.roundTrip(ctx, &cl, nil)
	c.limit.release()
	switch {
	case err != nil:
		return "", c.transportError(cl.op(), err)
	case status/100 != 2:
		return "", c.statusError(cl.op(), status, body)
	}
	var p UserProfile
	if err := json.Unmarshal(body, &p); err != nil {
		return "", c.newError(cl.op(), status, "decoding the answer: "+err.Error(), remote.ErrInvalid)
	}
	return p.OwnerID, nil
}
