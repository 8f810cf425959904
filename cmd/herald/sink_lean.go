package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"time"
)

// leanSink is the benchmarks' default SMTP sink: a minimal SMTP server
// (RFC 5321 with PIPELINING, 8BITMIME and SMTPUTF8) that accepts every
// message. It answers every command that has arrived in one write, and
// reads DATA a line at a time without copying, so that on a 2-core machine
// the sink takes a small share of the CPU that Herald is measured on;
// go-smtp, which writes each reply on its own and reads DATA byte by byte,
// took as much CPU per message as a third of Herald's signup path.
type leanSink struct {
	log   *sinkLog
	mu    sync.Mutex // guards open
	open  map[net.Conn]bool
	conns sync.WaitGroup
}

const leanSinkName = "sink.localhost"

// serve accepts connections until ln is closed, then closes those still
// open and waits for their sessions to end.
func (s *leanSink) serve(ln net.Listener) {
	s.open = map[net.Conn]bool{}
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		s.mu.Lock()
		s.open[c] = true
		s.mu.Unlock()
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			_ = s.session(c)
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
	s.mu.Lock()
	for c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.conns.Wait()
}

// session speaks SMTP on one connection until QUIT or the peer goes.
func (s *leanSink) session(c net.Conn) error {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 4<<10)
	reply := func(line string) error {
		_, _ = bw.WriteString(line)
		_, err := bw.WriteString("\r\n")
		// Pipelined commands that have already arrived are answered in
		// the same write (RFC 2920).
		if br.Buffered() == 0 {
			err = bw.Flush()
		}
		return err
	}
	if err := reply("220 " + leanSinkName + " ESMTP ready"); err != nil {
		return err
	}
	var rcpts []string
	var mail bool
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				_, _ = br.ReadString('\n')
				if err := reply("500 5.5.2 line too long"); err != nil {
					return err
				}
				continue
			}
			return err
		}
		cmd := bytes.TrimRight(line, "\r\n")
		verb := cmd
		if i := bytes.IndexByte(cmd, ' '); i >= 0 {
			verb = cmd[:i]
		}
		switch string(bytes.ToUpper(verb)) {
		case "EHLO":
			err = reply("250-" + leanSinkName + "\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN\r\n250 SIZE 52428800")
		case "HELO":
			err = reply("250 " + leanSinkName)
		case "AUTH":
			err = reply("235 2.7.0 Authentication successful")
		case "MAIL":
			mail, rcpts = true, rcpts[:0]
			err = reply("250 2.1.0 OK")
		case "RCPT":
			if !mail {
				err = reply("503 5.5.1 MAIL first")
				break
			}
			rcpts = append(rcpts, angleAddr(cmd))
			err = reply("250 2.1.5 OK")
		case "DATA":
			if len(rcpts) == 0 {
				err = reply("503 5.5.1 RCPT first")
				break
			}
			if err = reply("354 End data with <CR><LF>.<CR><LF>"); err != nil {
				return err
			}
			if err = skipData(br); err != nil {
				return err
			}
			s.log.accepted(rcpts)
			mail, rcpts = false, rcpts[:0]
			err = reply("250 2.0.0 OK queued")
		case "RSET":
			mail, rcpts = false, rcpts[:0]
			err = reply("250 2.0.0 OK")
		case "NOOP":
			err = reply("250 2.0.0 OK")
		case "QUIT":
			_ = reply("221 2.0.0 Bye")
			return bw.Flush()
		default:
			err = reply("500 5.5.2 command not recognised")
		}
		if err != nil {
			return err
		}
	}
}

// skipData reads a message up to and including its "." line.
func skipData(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a very long line: the rest of it follows
		}
		if err != nil {
			return err
		}
		if len(line) <= 3 && (string(line) == ".\r\n" || string(line) == ".\n") {
			return nil
		}
	}
}

// angleAddr is the address inside "RCPT TO:<addr>" (or what follows the
// colon when there are no brackets).
func angleAddr(cmd []byte) string {
	if i := bytes.IndexByte(cmd, '<'); i >= 0 {
		if j := bytes.IndexByte(cmd[i:], '>'); j > 0 {
			return string(cmd[i+1 : i+j])
		}
	}
	if i := bytes.IndexByte(cmd, ':'); i >= 0 {
		f := bytes.Fields(cmd[i+1:])
		if len(f) > 0 {
			return string(f[0])
		}
	}
	return ""
}
