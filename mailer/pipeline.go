package mailer

import (
	"bytes"
	"errors"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/wneessen/go-mail/smtp"
)

// sendRaw sends one message already rendered (and signed) as data, from
// the envelope sender from to the single recipient rcpt, one command at a
// time, for a server that does not offer PIPELINING. It uses go-mail's
// SMTP client for the connection but does the command exchange itself, so
// that the bytes sent are exactly those rendered and signed.
func sendRaw(c *smtp.Client, from, rcpt string, data []byte) error {
	t := c.Text
	cmds := []string{mailCommand(c, from, rcpt), "RCPT TO:" + rcpt, "DATA"}
	wants := []int{250, 25, 354}
	for i, cmd := range cmds {
		id, err := t.Cmd("%s", cmd)
		if err != nil {
			return &SendError{Err: err}
		}
		if err := response(t, id, wants[i]); err != nil {
			if isNetError(err) {
				return &SendError{Err: err}
			}
			if id, err := t.Cmd("RSET"); err == nil {
				_ = response(t, id, 250)
			}
			return replyError(err, err)
		}
	}
	writeData(t, data)
	if err := t.W.Flush(); err != nil {
		return &SendError{Err: err}
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		return replyError(err, err)
	}
	return nil
}

// mailCommand is MAIL FROM with the parameters the server takes.
func mailCommand(c *smtp.Client, from, rcpt string) string {
	cmd := "MAIL FROM:" + from
	if ok, _ := c.Extension("8BITMIME"); ok {
		cmd += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok && !isASCII(from+rcpt) {
		cmd += " SMTPUTF8"
	}
	return cmd
}

// exchange sends messages over a connection whose server offers
// PIPELINING (RFC 2920). Each message's MAIL, RCPT and DATA go in one
// write; and once the server has said 354, the message's data, its final
// dot and the next message's three commands go in one write too. A run of
// k messages takes k+1 round trips instead of 2k, and as many writes,
// which under load is most of a message's cost on both sides.
//
// errs[i] receives message i's outcome. It returns how many messages have
// a known outcome; when that is less than len(outs), the connection broke
// (netErr) before the rest were answered, and none of them is known to
// have been accepted.
func exchange(c *smtp.Client, outs []*outgoing, errs []error) (done int, netErr error) {
	t := c.Text
	writeEnvelope := func(o *outgoing) {
		_, _ = t.W.WriteString(mailCommand(c, o.from, o.rcpt) + "\r\n")
		_, _ = t.W.WriteString("RCPT TO:" + o.rcpt + "\r\n")
		_, _ = t.W.WriteString("DATA\r\n")
	}
	readEnvelope := func() (replies [3]error, netErr error) {
		for i, want := range []int{250, 25, 354} {
			_, _, replies[i] = t.ReadResponse(want)
			if replies[i] != nil && isNetError(replies[i]) {
				return replies, replies[i]
			}
		}
		return replies, nil
	}
	writeEnvelope(outs[0])
	if err := t.W.Flush(); err != nil {
		return 0, err
	}
	env, err := readEnvelope()
	if err != nil {
		return 0, err
	}
	for i, o := range outs {
		accepted := env[0] == nil && env[1] == nil && env[2] == nil
		emptyData, rset := false, false
		if accepted {
			writeData(t, o.data)
		} else {
			if env[2] == nil {
				// The server took DATA although MAIL or RCPT failed: end
				// the empty message; its answer does not matter.
				_, _ = t.W.WriteString(".\r\n")
				emptyData = true
			}
			errs[i] = replyError(errors.Join(env[0], env[1], env[2]), firstErr(env[:]))
			_, _ = t.W.WriteString("RSET\r\n")
			rset = true
		}
		last := i == len(outs)-1
		if !last {
			writeEnvelope(outs[i+1])
		}
		if err := t.W.Flush(); err != nil {
			return i, err
		}
		if accepted {
			if _, _, err := t.ReadResponse(250); err != nil {
				if isNetError(err) {
					return i, err
				}
				errs[i] = replyError(err, err)
			}
		}
		if emptyData {
			if _, _, err := t.ReadResponse(250); err != nil && isNetError(err) {
				return i + 1, err
			}
		}
		if rset {
			if _, _, err := t.ReadResponse(250); err != nil && isNetError(err) {
				return i + 1, err
			}
		}
		if !last {
			if env, err = readEnvelope(); err != nil {
				return i + 1, err
			}
		}
	}
	return len(outs), nil
}

// writeData buffers data, the rendered message, as SMTP DATA with its
// final dot; the caller flushes (write errors show there). It dot-stuffs
// in one pass over the buffer (textproto's DotWriter goes byte by byte,
// which was a tenth of a send's CPU) and without copying it: the runs
// between line-leading dots are written as they are. go-mail and the DKIM
// signer write CRLF line endings, so a line-leading dot is always after
// "\r\n".
func writeData(t *textproto.Conn, data []byte) {
	crlfDot := []byte("\r\n.")
	if bytes.HasPrefix(data, []byte(".")) {
		_ = t.W.WriteByte('.')
	}
	for {
		i := bytes.Index(data, crlfDot)
		if i < 0 {
			break
		}
		// Up to and including the dot, then the dot again.
		_, _ = t.W.Write(data[:i+3])
		_ = t.W.WriteByte('.')
		data = data[i+3:]
	}
	_, _ = t.W.Write(data)
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		_, _ = t.W.WriteString("\r\n")
	}
	_, _ = t.W.WriteString(".\r\n")
}

func response(t *textproto.Conn, id uint, code int) error {
	t.StartResponse(id)
	defer t.EndResponse(id)
	_, _, err := t.ReadResponse(code)
	return err
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func isNetError(err error) bool {
	var te *textproto.Error
	return !errors.As(err, &te)
}

var enhancedCode = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})\b`)

// replyError classifies the server's reply: 5xx permanent, 4xx temporary,
// anything that is not a reply (the connection broke) temporary too.
func replyError(all, first error) *SendError {
	var te *textproto.Error
	if !errors.As(first, &te) {
		return &SendError{Err: all}
	}
	se := &SendError{Code: te.Code, Err: all, Permanent: te.Code >= 500 && te.Code <= 599}
	if m := enhancedCode.FindStringSubmatch(strings.TrimSpace(te.Msg)); m != nil {
		se.Enhanced = m[1]
	}
	return se
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
