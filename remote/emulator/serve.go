package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ServeConfig configures Serve.
type ServeConfig struct {
	Addr     string   // listen address; "" means 127.0.0.1:8080
	DataDir  string   // see Options.DataDir; "" keeps everything in memory
	Token    string   // the demo user's token; "" generates a random one
	Users    []string // extra users, each "NAME:TOKEN" or "NAME:TOKEN:uncertified"
	Faults   []string // fault specs for ParseFault
	Throttle bool     // see Options.Throttle
	// RatePerMinute and LinkRate: see Options.
	RatePerMinute int
	LinkRate      int64
	Out           io.Writer
}

// Serve runs the emulator for `synfs emulator`: it listens on c.Addr, seeds
// the demo user, project and folder, adds c.Users and c.Faults, prints the
// base URL, the token and the seeded IDs to c.Out, and serves until ctx is
// done. It then shuts down and saves the state.
func Serve(ctx context.Context, c ServeConfig) error {
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	var faults []Fault
	for _, spec := range c.Faults {
		f, err := ParseFault(spec)
		if err != nil {
			return err
		}
		faults = append(faults, f)
	}
	type extra struct {
		name, token string
		certified   bool
	}
	var users []extra
	for _, spec := range c.Users {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] != "uncertified") {
			return fmt.Errorf("emulator: bad user spec (want NAME:TOKEN[:uncertified]) for user %q", parts[0])
		}
		users = append(users, extra{parts[0], parts[1], len(parts) == 2})
	}
	s, err := New(Options{DataDir: c.DataDir, Throttle: c.Throttle, RatePerMinute: c.RatePerMinute, LinkRate: c.LinkRate})
	if err != nil {
		return err
	}
	defer s.Close()
	token := c.Token
	if token == "" {
		token = randomHex(20)
	}
	project, folder, err := s.Seed(token)
	if err != nil {
		return err
	}
	for _, u := range users {
		s.AddUser(u.name, u.token, u.certified)
	}
	for _, f := range faults {
		s.AddFault(f)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	base := "http://" + displayAddr(ln.Addr())
	fmt.Fprintf(c.Out, "Synapse emulator listening on %s\n", base)
	fmt.Fprintf(c.Out, "demo user token: %s\n", token)
	fmt.Fprintf(c.Out, "Demo Project: %s, folder Data: %s\n", project, folder)
	fmt.Fprintf(c.Out, "endpoints: repo %s/repo/v1  file %s/file/v1  auth %s/auth/v1\n", base, base, base)
	for _, f := range faults {
		fmt.Fprintf(c.Out, "fault: %s\n", f)
	}
	if c.RatePerMinute > 0 {
		fmt.Fprintf(c.Out, "throttle: %d REST calls a minute per user\n", c.RatePerMinute)
	}
	if c.LinkRate > 0 {
		fmt.Fprintf(c.Out, "link: presigned transfers paced to %d bytes/s each way\n", c.LinkRate)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return s.Close()
}

// displayAddr turns a wildcard listen address into one a client can use.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
