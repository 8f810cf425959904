package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// countingSink is the SMTP sink child process (bench smtp-sink), read by
// counting: startSink keeps every accepted address in a map, which at a
// million messages would be a large part of the parent's memory.
type countingSink struct {
	*sinkProcess
	count atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the latest acceptance
}

func startCountingSink(ctx context.Context, impl string) (*countingSink, error) {
	cmd, stdin, stdout, err := launchSink(ctx, impl)
	if err != nil {
		return nil, err
	}
	s := &countingSink{sinkProcess: &sinkProcess{cmd: cmd, stdin: stdin, exited: make(chan struct{})}}
	br := bufio.NewReaderSize(stdout, 64<<10)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "LISTENING ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("smtp sink did not start")
	}
	s.addr = strings.TrimSpace(strings.TrimPrefix(line, "LISTENING "))
	go func() {
		defer close(s.exited)
		prefix := []byte("ACCEPTED ")
		for {
			b, err := br.ReadSlice('\n')
			if len(b) > len(prefix) && string(b[:len(prefix)]) == string(prefix) {
				var ns int64
				for _, c := range b[len(prefix):] {
					if c < '0' || c > '9' {
						break
					}
					ns = ns*10 + int64(c-'0')
				}
				if ns > s.last.Load() {
					s.last.Store(ns)
				}
				s.count.Add(1)
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				_, _ = io.Copy(io.Discard, br)
				return
			}
		}
	}()
	return s, nil
}

func (s *countingSink) lastAt() time.Time { return time.Unix(0, s.last.Load()) }

// waitFor waits until the sink has accepted target messages in all and
// returns the count. It prints progress; when nothing arrives for a while
// it asks done (when not nil) whether the sender has finished anyway (some
// deliveries failed), and gives up after two minutes without progress.
func (s *countingSink) waitFor(ctx context.Context, target int64, start time.Time, who string, progress func(string, ...any), done func() (bool, error)) (int64, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastReport, lastChange, lastCheck := time.Now(), time.Now(), time.Time{}
	lastCount := s.count.Load()
	base := lastCount
	for {
		c := s.count.Load()
		if c >= target {
			return c, nil
		}
		now := time.Now()
		if c != lastCount {
			lastCount, lastChange = c, now
		}
		if now.Sub(lastReport) >= 5*time.Second {
			progress("%s: %d/%d accepted by the sink, %.0f msg/s so far", who, c-base, target-base,
				float64(c-base)/now.Sub(start).Seconds())
			lastReport = now
		}
		if stalled := now.Sub(lastChange); stalled >= 10*time.Second {
			if done != nil && now.Sub(lastCheck) >= 10*time.Second {
				lastCheck = now
				if ok, err := done(); err != nil || ok {
					return c, err
				}
			}
			if stalled >= 2*time.Minute {
				return c, fmt.Errorf("no message accepted for %s (%d of %d)", stalled.Round(time.Second), c-base, target-base)
			}
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-s.exited:
			return s.count.Load(), errors.New("the SMTP sink exited")
		case <-tick.C:
		}
	}
}
