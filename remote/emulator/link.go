package emulator

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// link paces the bytes of presigned transfers (part PUTs in one direction,
// blob GETs in the other) to a rate shared by every transfer in that
// direction, as the network between a client and S3 would: concurrent
// transfers split the rate between them, and a client that wants the whole
// rate must keep enough of them going. The pacing is a reservation: each
// slice of bytes occupies the link for len/rate from the moment the link is
// next free, and its transfer waits until that time has passed. An idle link
// saves at most linkSlack of credit: enough that a transfer whose timer
// fires late loses none of its rate, too little for a burst. A nil *link
// does not pace.
type link struct {
	rate float64 // bytes per second

	mu   sync.Mutex
	next time.Time // when the bytes reserved so far have passed
}

// linkSlice is the most bytes one reservation covers: small enough that
// concurrent transfers interleave finely, large enough that a timer per
// slice costs little (0.5 ms of a 1 Gbit/s link).
const linkSlice = 64 << 10

// linkSlack is how far behind the clock the link's reservations may fall.
// Timers fire late by up to a millisecond or more on a busy machine; a
// single stream that lost that lateness each slice would run at a fraction
// of the rate.
const linkSlack = 10 * time.Millisecond

func newLink(bytesPerSecond int64) *link {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &link{rate: float64(bytesPerSecond)}
}

// pass reserves n bytes of the link and waits until they have passed, or
// until ctx is done.
func (l *link) pass(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	d := time.Duration(float64(n) / l.rate * float64(time.Second))
	l.mu.Lock()
	if least := time.Now().Add(-linkSlack); l.next.Before(least) {
		l.next = least
	}
	l.next = l.next.Add(d)
	done := l.next
	l.mu.Unlock()
	if wait := time.Until(done); wait > 0 {
		return remote.Sleep(ctx, wait)
	}
	return nil
}

// linkReader paces reads from r (a request body) through l.
type linkReader struct {
	ctx context.Context
	r   io.Reader
	l   *link
}

func (lr linkReader) Read(p []byte) (int, error) {
	if len(p) > linkSlice {
		p = p[:linkSlice]
	}
	n, err := lr.r.Read(p)
	if perr := lr.l.pass(lr.ctx, n); perr != nil && err == nil {
		err = perr
	}
	return n, err
}

// linkWriter paces writes to a response through l. It embeds only
// http.ResponseWriter, so a copy into it goes through Write (never a
// ReadFrom that would bypass the pacing).
type linkWriter struct {
	http.ResponseWriter
	ctx context.Context
	l   *link
}

func (lw linkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		s := p[:min(len(p), linkSlice)]
		if err := lw.l.pass(lw.ctx, len(s)); err != nil {
			return written, err
		}
		n, err := lw.ResponseWriter.Write(s)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
