package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// newFlagSet returns the flag set of "synfs NAME"; usage is printed before
// the flags.
func newFlagSet(name, usage string) *flag.FlagSet {
	fl := flag.NewFlagSet("synfs "+name, flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), usage)
		fl.PrintDefaults()
	}
	return fl
}

// parse parses args, which may start with one positional argument (Go's
// flag package stops at the first one). It returns the positional
// arguments, and code >= 0 when the command is to exit with it: 0 after
// --help (usage on stdout), 2 after a bad flag (one error line and the
// usage on stderr).
func parse(fl *flag.FlagSet, args []string) (pos []string, code int) {
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") || args[0] == "-" {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		var out strings.Builder
		fl.SetOutput(&out)
		err := fl.Parse(args)
		fl.SetOutput(os.Stderr)
		if errors.Is(err, flag.ErrHelp) {
			fl.SetOutput(os.Stdout)
			fl.Usage()
			return nil, 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "synfs: %v\n", err)
			fl.Usage()
			return nil, 2
		}
		args = fl.Args()
		if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
			// "--" ended the flags: the rest is positional.
			pos = append(pos, args...)
			break
		}
	}
	return pos, -1
}

// parseWithArg parses a command that takes exactly one positional argument.
func parseWithArg(fl *flag.FlagSet, args []string, what string) (string, int) {
	pos, code := parse(fl, args)
	if code >= 0 {
		return "", code
	}
	return oneArg(fl, pos, what, true)
}

// oneArg checks that pos holds one argument (or none, when !required).
func oneArg(fl *flag.FlagSet, pos []string, what string, required bool) (string, int) {
	switch {
	case len(pos) == 0 && required:
		fmt.Fprintf(os.Stderr, "%s: missing %s\n", fl.Name(), what)
		fl.Usage()
		return "", 2
	case len(pos) > 1:
		fmt.Fprintf(os.Stderr, "%s: one %s only, got %d arguments\n", fl.Name(), what, len(pos))
		fl.Usage()
		return "", 2
	case len(pos) == 0:
		return "", -1
	}
	return pos[0], -1
}

// switchWriter is the log's destination, which can change (stderr, then
// the log file).
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) get() io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}
