package mailer

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"herald/config"
	"herald/mailer/smtptest"
	"herald/models"
	"herald/models/testdb"
)

// testKey is a DKIM key made for one test and its DNS TXT record.
type testKey struct {
	cfg *config.DKIMConfig
	txt string
}

func newTestKey(t *testing.T, kind string) testKey {
	t.Helper()
	var signer crypto.Signer
	var txt string
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		signer, txt = k, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der)
	case "ed25519":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer, txt = k, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	return testKey{cfg: &config.DKIMConfig{Domain: "example.com", Selector: "herald2026", Signer: signer}, txt: txt}
}

// dkimMessage is testMessage with a List-Unsubscribe URL long enough that
// the header is folded and the h= list is long.
func dkimMessage() *Message {
	m := testMessage()
	m.ListUnsubscribe = "https://news.example.com/unsubscribe/" + strings.Repeat("TOKEN-abcdefghij0123456789-", 6) + "end?list=politics-uk&source=digest"
	return m
}

var wantSigned = []string{"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"}

// verifyDKIM checks raw's one DKIM signature against k's public key, served
// as the TXT record of herald2026._domainkey.example.com.
func verifyDKIM(t *testing.T, raw []byte, k testKey) *dkim.Verification {
	t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "herald2026._domainkey.example.com" {
				return nil, errors.New("no such record: " + domain)
			}
			return []string{k.txt}, nil
		},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(verifs) != 1 {
		t.Fatalf("got %d signatures, want 1", len(verifs))
	}
	return verifs[0]
}

func checkSigned(t *testing.T, raw []byte, k testKey) {
	t.Helper()
	v := verifyDKIM(t, raw, k)
	if v.Err != nil {
		t.Fatalf("signature does not verify: %v\n%s", v.Err, headerOf(raw))
	}
	if v.Domain != "example.com" {
		t.Errorf("d= %q, want example.com", v.Domain)
	}
	var keys []string
	for _, h := range v.HeaderKeys {
		keys = append(keys, strings.ToLower(h))
	}
	for _, h := range wantSigned {
		if !slices.Contains(keys, h) {
			t.Errorf("signature does not cover %s (h=%s)", h, strings.Join(keys, ":"))
		}
	}
	hdr := string(headerOf(raw))
	if !strings.HasPrefix(hdr, "DKIM-Signature:") || !strings.Contains(hdr, "c=relaxed/relaxed") {
		t.Errorf("want a relaxed/relaxed DKIM-Signature first:\n%s", hdr)
	}
	// The unsubscribe URL is long enough to be folded; the message must
	// still carry it whole.
	p := parseRaw(t, raw)
	if got, want := p.header.Get("List-Unsubscribe"), "<"+dkimMessage().ListUnsubscribe+">"; strings.ReplaceAll(got, " ", "") != want {
		t.Errorf("List-Unsubscribe = %q, want %q", got, want)
	}

	// Altered after signing, the message must fail: proof that the check
	// above can fail.
	bad := bytes.Replace(raw, []byte("\r\nSubject: "), []byte("\r\nSubject: Re: "), 1)
	if bytes.Equal(bad, raw) {
		t.Fatal("no Subject line to alter")
	}
	if v := verifyDKIM(t, bad, k); v.Err == nil {
		t.Error("a message with its Subject altered still verifies")
	}
	bad = bytes.Replace(raw, []byte("TOKEN-abc"), []byte("TOKEN-xyz"), 1)
	if v := verifyDKIM(t, bad, k); v.Err == nil {
		t.Error("a message with its List-Unsubscribe altered still verifies")
	}
}

func headerOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2]
	}
	return raw
}

func TestDKIMOverSMTP(t *testing.T) {
	for _, kind := range []string{"rsa", "ed25519"} {
		for _, pipelining := range []bool{true, false} {
			name := kind + "/pipelined"
			if !pipelining {
				name = kind + "/not-pipelined"
			}
			t.Run(name, func(t *testing.T) {
				k := newTestKey(t, kind)
				srv := smtptest.New(t)
				sc := srv.Config()
				if !pipelining {
					sc = withoutPipelining(t, srv)
				}
				s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{sc}, DKIM: k.cfg})
				m := dkimMessage()
				// Dots at line starts: signing comes before dot-stuffing.
				m.Text = ".first line\n" + m.Text + "\n.\n..last"
				for i := range 2 { // the second message goes over the same connection
					m.MessageID = []string{"a@news.example.com", "b@news.example.com"}[i]
					if err := s.Send(context.Background(), m); err != nil {
						t.Fatal(err)
					}
				}
				msgs := srv.Messages()
				if len(msgs) != 2 {
					t.Fatalf("server got %d messages, want 2", len(msgs))
				}
				for _, msg := range msgs {
					checkSigned(t, msg.Data, k)
				}
			})
		}
	}
}

// TestNoDKIMWithoutPipelining: the non-pipelined path, unsigned, still
// sends the message and reports refusals as the pipelined one does.
func TestNoDKIMWithoutPipelining(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{withoutPipelining(t, srv)}})
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || bytes.Contains(headerOf(msgs[0].Data), []byte("DKIM-Signature")) {
		t.Fatalf("want one unsigned message, got %d", len(msgs))
	}
	if p := parseRaw(t, msgs[0].Data); len(p.parts) != 2 || p.header.Get("Message-ID") != "<abc.123@news.example.com>" {
		t.Errorf("message arrived changed:\n%s", msgs[0].Data)
	}
	srv.On("gone@example.org", smtptest.Rule{Code: 550, Enhanced: "5.1.1"})
	srv.On("later@example.org", smtptest.Rule{Code: 451, Enhanced: "4.3.0", AtData: true})
	if se := sendErr(t, s.Send(context.Background(), messageTo("gone@example.org", 1))); !se.Permanent || se.Code != 550 || se.Enhanced != "5.1.1" {
		t.Errorf("550 at RCPT: got %+v", se)
	}
	if se := sendErr(t, s.Send(context.Background(), messageTo("later@example.org", 2))); se.Permanent || se.Code != 451 {
		t.Errorf("451 after DATA: got %+v", se)
	}
	if err := s.Send(context.Background(), messageTo("fine@example.org", 3)); err != nil {
		t.Fatalf("the connection should still work after refusals: %v", err)
	}
	if n := len(srv.MessagesTo("fine@example.org")); n != 1 {
		t.Errorf("fine@example.org got %d messages", n)
	}
}

func TestDKIMDevMailbox(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) {
		k := newTestKey(t, "ed25519")
		box := NewDevMailbox(store).WithDKIM(k.cfg)
		ctx := context.Background()
		if err := box.Send(ctx, dkimMessage()); err != nil {
			t.Fatal(err)
		}
		list, err := store.MailboxMessages(ctx, 10, 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("mailbox has %d messages (%v), want 1", len(list), err)
		}
		got, err := store.MailboxMessage(ctx, list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		checkSigned(t, []byte(got.Raw), k)
	})
}

func TestSignDKIMWithoutListHeaders(t *testing.T) {
	k := newTestKey(t, "rsa")
	m := testMessage()
	m.ListUnsubscribe, m.ListID, m.FeedbackID = "", "", ""
	raw, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := SignDKIM(raw, k.cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := verifyDKIM(t, signed, k)
	if v.Err != nil {
		t.Fatal(v.Err)
	}
	for _, h := range v.HeaderKeys {
		if strings.HasPrefix(strings.ToLower(h), "list-") {
			t.Errorf("h= names %s, which the message does not have", h)
		}
	}
	if same, _ := SignDKIM(raw, nil); !bytes.Equal(same, raw) {
		t.Error("without a key the message must be left as it is")
	}
}

// withoutPipelining puts a proxy in front of srv that renames PIPELINING in
// the EHLO reply, so the client takes the one-command-at-a-time path.
func withoutPipelining(t *testing.T, srv *smtptest.Server) config.SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var renamed atomic.Bool
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
		if !renamed.Load() {
			t.Error("the proxy never saw PIPELINING offered")
		}
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			upstream, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, upstream)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(upstream, client)
				_ = upstream.Close()
			})
			wg.Go(func() {
				defer client.Close()
				r := bufio.NewReader(upstream)
				for {
					line, err := r.ReadString('\n')
					if len(line) > 4 && strings.EqualFold(strings.TrimSpace(line[4:]), "PIPELINING") {
						line = line[:4] + "X-NO-PIPELINING\r\n"
						renamed.Store(true)
					}
					if _, werr := io.WriteString(client, line); werr != nil || err != nil {
						return
					}
				}
			})
		}
	})
	addr := ln.Addr().(*net.TCPAddr)
	return config.SMTPServer{Host: "127.0.0.1", Port: addr.Port, TLS: "none"}
}
