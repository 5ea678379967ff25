package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/synfs/synfs/remote/emulator"
)

type listFlag []string

func (l *listFlag) String() string     { return "" }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func cmdEmulator(args []string) int {
	fl := newFlagSet("emulator", "Usage: synfs emulator [flags]\n\nServes a local emulator of Synapse's REST API (docs/emulator.md).\n\nFlags:\n")
	addr := fl.String("addr", "127.0.0.1:8780", "`host:port` to listen on")
	data := fl.String("data", "", "keep entities and file bytes in `DIR` across restarts (default: memory)")
	token := fl.String("token", "", "the demo user's token (default: random, printed)")
	throttle := fl.Bool("throttle", false, "answer 429 past 3 concurrent REST calls per user, as Synapse does")
	perMinute := fl.Int("rate-per-minute", 0, "answer 429 past `N` REST calls per user in any 60 s (Synapse's is 600; 0: no limit)")
	linkRate := fl.String("link-rate", "", "pace presigned part PUTs and file GETs to `RATE` bytes/s each way, shared, like a network link (e.g. 125MB for 1 Gbit/s; default: unpaced)")
	var users, faults listFlag
	fl.Var(&users, "user", "add a user `NAME:TOKEN[:uncertified]` (repeatable)")
	fl.Var(&faults, "fault", "inject a fault, e.g. \"PUT /s3/:503:p=0.2\" (repeatable; see docs/emulator.md)")
	pos, code := parse(fl, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(os.Stderr, "synfs emulator: unexpected argument %q\n", pos[0])
		fl.Usage()
		return 2
	}
	var link uint64
	if *linkRate != "" {
		var err error
		if link, err = humanize.ParseBytes(*linkRate); err != nil || link == 0 {
			fmt.Fprintf(os.Stderr, "synfs emulator: --link-rate %q: want a byte rate such as 125MB\n", *linkRate)
			return 2
		}
	}
	if *perMinute < 0 {
		fmt.Fprintf(os.Stderr, "synfs emulator: --rate-per-minute must not be negative\n")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := emulator.Serve(ctx, emulator.ServeConfig{
		Addr: *addr, DataDir: *data, Token: *token, Users: users, Faults: faults,
		Throttle: *throttle, RatePerMinute: *perMinute, LinkRate: int64(link), Out: os.Stdout,
	})
	if err != nil {
		return fail(1, "emulator: %v", err)
	}
	return 0
}
