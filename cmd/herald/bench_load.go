package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cmdSignupLoad is bench signup's load generator, run as a process of its
// own so that its CPU is not counted as Herald's. Each client keeps one
// HTTP/1.1 connection open and posts signups on it back to back; the
// requests are written whole in one call and only the status line and
// Content-Length of each answer are parsed, so that the generator costs a
// fraction of what net/http's client does. It prints one line per accepted
// signup, "OK <answered unix ns> <latency ns> <email>", then
// "ELAPSED <ns>" and "ERRORS <n> <first error>".
func cmdSignupLoad(e *env, args []string) int {
	fs := flag.NewFlagSet("bench signup-load", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	target := fs.String("url", "", "the subscribe API's URL (http only)")
	round := fs.Int("round", 0, "round number, part of each generated address")
	run := fs.String("run", "", "a tag for this run, part of each generated address, so that runs on one database sign up new readers")
	clients := fs.Int("clients", 16, "concurrent clients, one connection each")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(e.stderr, "herald bench signup-load: --url %q must be an http:// URL\n", *target)
		return 2
	}
	out := bufio.NewWriterSize(e.stdout, 256<<10)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs, first := 0, ""
	start := time.Now()
	deadline := start.Add(*duration)
	for c := range *clients {
		wg.Go(func() {
			lc := &loadClient{host: u.Host, path: u.RequestURI()}
			defer lc.close()
			var lines bytes.Buffer
			n, firstErr := 0, ""
			for i := 0; time.Now().Before(deadline) && e.ctx.Err() == nil; i++ {
				email := fmt.Sprintf("%sr%d.c%d.n%d@bench.example.com", *run, *round, c, i)
				body := `{"email":"` + email + `","sections":["politics-uk"],"frequency":"daily","consent":true,"source":"bench"}`
				t0 := time.Now()
				status, err := lc.post(body)
				t1 := time.Now()
				if err == nil && status != 202 {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					n++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				fmt.Fprintf(&lines, "OK %d %d %s\n", t1.UnixNano(), t1.Sub(t0).Nanoseconds(), email)
			}
			mu.Lock()
			defer mu.Unlock()
			_, _ = out.Write(lines.Bytes())
			errs += n
			if first == "" {
				first = firstErr
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(out, "ELAPSED %d\n", time.Since(start).Nanoseconds())
	fmt.Fprintf(out, "ERRORS %d %s\n", errs, strings.ReplaceAll(first, "\n", " "))
	if err := out.Flush(); err != nil {
		return 1
	}
	return 0
}

// loadClient is one keep-alive HTTP/1.1 connection.
type loadClient struct {
	host, path string
	conn       net.Conn
	br         *bufio.Reader
	req        []byte
}

func (lc *loadClient) close() {
	if lc.conn != nil {
		_ = lc.conn.Close()
		lc.conn = nil
	}
}

// post sends one JSON POST and reads its answer, returning the status.
func (lc *loadClient) post(body string) (int, error) {
	if lc.conn == nil {
		c, err := net.DialTimeout("tcp", lc.host, 10*time.Second)
		if err != nil {
			return 0, err
		}
		lc.conn, lc.br = c, bufio.NewReaderSize(c, 8<<10)
	}
	_ = lc.conn.SetDeadline(time.Now().Add(30 * time.Second))
	lc.req = append(lc.req[:0], "POST "+lc.path+" HTTP/1.1\r\nHost: "+lc.host+
		"\r\nContent-Type: application/json\r\nUser-Agent: herald-bench\r\nContent-Length: "...)
	lc.req = strconv.AppendInt(lc.req, int64(len(body)), 10)
	lc.req = append(lc.req, "\r\n\r\n"...)
	lc.req = append(lc.req, body...)
	if _, err := lc.conn.Write(lc.req); err != nil {
		lc.close()
		return 0, err
	}
	status, keep, err := readAnswer(lc.br)
	if err != nil || !keep {
		lc.close()
	}
	return status, err
}

// readAnswer reads one HTTP/1.1 response with a Content-Length body and
// reports its status and whether the connection stays open.
func readAnswer(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	f := bytes.Fields(line)
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(f[1])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return status, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return status, false, errors.New("chunked answers are not supported")
		}
	}
	if length < 0 {
		return status, false, errors.New("answer without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		return status, false, err
	}
	return status, keep, nil
}

// runLoadProcess runs one round of `herald bench signup-load` and collects
// its results.
func runLoadProcess(ctx context.Context, target, run string, round, clients int, d time.Duration) (roundResult, time.Duration, error) {
	res := roundResult{done: map[string]time.Time{}}
	exe, err := os.Executable()
	if err != nil {
		return res, 0, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "signup-load", "--url", target,
		"--run", run, "--round", strconv.Itoa(round), "--clients", strconv.Itoa(clients), "--duration", d.String())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, 0, err
	}
	if err := cmd.Start(); err != nil {
		return res, 0, fmt.Errorf("start load generator: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		switch {
		case len(f) == 4 && f[0] == "OK":
			at, _ := strconv.ParseInt(f[1], 10, 64)
			lat, _ := strconv.ParseInt(f[2], 10, 64)
			res.latencies = append(res.latencies, time.Duration(lat))
			res.done[strings.ToLower(f[3])] = time.Unix(0, at)
		case len(f) == 2 && f[0] == "ELAPSED":
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			res.elapsed = time.Duration(ns)
		case len(f) >= 2 && f[0] == "ERRORS":
			res.errors, _ = strconv.Atoi(f[1])
			if len(f) > 2 {
				res.firstErr = strings.Join(f[2:], " ")
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return res, cpu, fmt.Errorf("load generator: %w", err)
	}
	return res, cpu, nil
}
