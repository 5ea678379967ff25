package synapse

import (
	"log/slog"
	"time"
)

const slogWarn = slog.LevelWarn

func attrOp(op string) slog.Attr         { return slog.String("op", op) }
func attrErr(err error) slog.Attr        { return slog.String("err", err.Error()) }
func attrAttempt(n int) slog.Attr        { return slog.Int("attempt", n) }
func attrWait(d time.Duration) slog.Attr { return slog.Duration("wait", d) }

const slogDebug = slog.LevelDebug
