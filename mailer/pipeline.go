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
// the envelope sender from to the single recipient rcpt. It uses go-mail's
// SMTP client for the connection but does the command exchange itself, so
// that the bytes sent are exactly those rendered and signed. When the
// server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA are written in
// one go: two round trips per message instead of four, which on a busy
// link is most of a message's time.
func sendRaw(c *smtp.Client, from, rcpt string, data []byte) error {
	pipelining, _ := c.Extension("PIPELINING")
	mailCmd := "MAIL FROM:" + from
	if ok, _ := c.Extension("8BITMIME"); ok {
		mailCmd += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok && !isASCII(from+rcpt) {
		mailCmd += " SMTPUTF8"
	}
	t := c.Text
	cmds := []string{mailCmd, "RCPT TO:" + rcpt, "DATA"}
	wants := []int{250, 25, 354}
	var errs [3]error
	if pipelining {
		// RFC 2920: the three commands in one write, then their replies.
		for _, cmd := range cmds {
			if _, err := t.W.WriteString(cmd + "\r\n"); err != nil {
				return &SendError{Err: err}
			}
		}
		if err := t.W.Flush(); err != nil {
			return &SendError{Err: err}
		}
		for i, want := range wants {
			_, _, errs[i] = t.ReadResponse(want)
			if errs[i] != nil && isNetError(errs[i]) {
				return &SendError{Err: errs[i]}
			}
		}
	} else {
		for i, cmd := range cmds {
			id, err := t.Cmd("%s", cmd)
			if err != nil {
				return &SendError{Err: err}
			}
			if errs[i] = response(t, id, wants[i]); errs[i] != nil {
				if isNetError(errs[i]) {
					return &SendError{Err: errs[i]}
				}
				break
			}
		}
	}
	if errs[0] != nil || errs[1] != nil || errs[2] != nil {
		if pipelining && errs[2] == nil {
			// The server took DATA although MAIL or RCPT failed: end the
			// empty message; its answer does not matter.
			if w := t.DotWriter(); w.Close() == nil {
				_, _, _ = t.ReadResponse(250)
			}
		}
		if id, err := t.Cmd("RSET"); err == nil {
			_ = response(t, id, 250)
		}
		return replyError(errors.Join(errs[0], errs[1], errs[2]), firstErr(errs[:]))
	}
	if err := writeData(t, data); err != nil {
		return &SendError{Err: err}
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		return replyError(err, err)
	}
	return nil
}

// writeData writes data, the rendered message, as SMTP DATA, dot-stuffed
// in one pass over the buffer (textproto's DotWriter goes byte by byte,
// which was a tenth of a send's CPU) and without copying it: the runs
// between line-leading dots are written as they are. go-mail and the DKIM
// signer write CRLF line endings, so a line-leading dot is always after
// "\r\n".
func writeData(t *textproto.Conn, data []byte) error {
	crlfDot := []byte("\r\n.")
	if bytes.HasPrefix(data, []byte(".")) {
		if _, err := t.W.WriteString("."); err != nil {
			return err
		}
	}
	for {
		i := bytes.Index(data, crlfDot)
		if i < 0 {
			break
		}
		// Up to and including the dot, then the dot again.
		if _, err := t.W.Write(data[:i+3]); err != nil {
			return err
		}
		if err := t.W.WriteByte('.'); err != nil {
			return err
		}
		data = data[i+3:]
	}
	if _, err := t.W.Write(data); err != nil {
		return err
	}
	end := ".\r\n"
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		end = "\r\n.\r\n"
	}
	if _, err := t.W.WriteString(end); err != nil {
		return err
	}
	return t.W.Flush()
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
