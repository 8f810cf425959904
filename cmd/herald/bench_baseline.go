package main

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"herald/mailer"
)

type baselineResult struct {
	sent int
	err  error
}

// runGoMailBaseline sends n copies of sample, each to a different address,
// over conns persistent connections with plain go-mail: one Client per
// connection, dialled once, Send in a loop.
func runGoMailBaseline(ctx context.Context, addr string, conns, n int, sample *mailer.Message, tag string) baselineResult {
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	domain := sample.MessageID[strings.LastIndexByte(sample.MessageID, '@')+1:]
	var next, sent atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			setErr := func(err error) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			m := *sample
			msg, err := mailer.Build(&m)
			if err != nil {
				setErr(err)
				return
			}
			c, err := gomail.NewClient(host, gomail.WithPort(port), gomail.WithTLSPolicy(gomail.NoTLS),
				gomail.WithTimeout(30*time.Second), gomail.WithoutNoop(), gomail.WithoutRset())
			if err != nil {
				setErr(err)
				return
			}
			if err := c.DialWithContext(ctx); err != nil {
				setErr(err)
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := msg.To(benchEmail(tag, i)); err != nil {
					setErr(err)
					continue
				}
				msg.SetMessageIDWithValue(fmt.Sprintf("herald.delivery.%d@%s", i, domain))
				if err := c.Send(msg); err != nil {
					setErr(err)
					continue
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return baselineResult{sent: int(sent.Load()), err: firstErr}
}

// goMailVersion is the go-mail module version this binary was built with.
func goMailVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/wneessen/go-mail" {
				return m.Version
			}
		}
	}
	return "(unknown version)"
}
