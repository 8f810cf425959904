package mailer

import (
	"context"
	"strings"
	"testing"
	"time"

	"herald/config"
	"herald/mailer/smtptest"
)

func TestCheckEveryTLSModeAndAuth(t *testing.T) {
	for _, mode := range []string{"none", "starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.NewWith(t, smtptest.Options{TLS: mode, Username: "herald", Password: "s3cret"})
			cfg := SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, TLSConfig: srv.ClientTLSConfig(), Timeout: 5 * time.Second}
			if err := Check(context.Background(), cfg); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if srv.Connections() == 0 {
				t.Error("the server saw no session")
			}
			if msgs := srv.Messages(); len(msgs) != 0 {
				t.Errorf("Check sent %d messages", len(msgs))
			}

			bad := srv.Config()
			bad.Password = "wrong"
			err := Check(context.Background(), SMTPConfig{Servers: []config.SMTPServer{bad}, TLSConfig: srv.ClientTLSConfig(), Timeout: 5 * time.Second})
			if err == nil {
				t.Fatal("Check with a wrong password succeeded")
			}
			if !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("error %q does not name the server", err)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestCheckStartTLSUntrustedCertificate(t *testing.T) {
	srv := smtptest.NewWith(t, smtptest.Options{TLS: "starttls"})
	// No TLSConfig: the system roots do not trust the test certificate.
	err := Check(context.Background(), SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

func TestCheckClosedPort(t *testing.T) {
	dead := deadServer(t)
	err := Check(context.Background(), SMTPConfig{Servers: []config.SMTPServer{dead}, Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Check of a closed port succeeded")
	}
	if !strings.Contains(err.Error(), dead.Addr()) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %q, want the address and connection refused", err)
	}
}

func TestCheckReportsEachFailingServer(t *testing.T) {
	good := smtptest.New(t)
	dead := deadServer(t)
	err := Check(context.Background(), SMTPConfig{Servers: []config.SMTPServer{good.Config(), dead}, Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), dead.Addr()) || strings.Contains(err.Error(), good.Addr()) {
		t.Fatalf("err = %v, want only %s named", err, dead.Addr())
	}
	if good.Connections() == 0 {
		t.Errorf("the working server was not tried")
	}
}

func TestCheckNoServersAndBadMode(t *testing.T) {
	if err := Check(context.Background(), SMTPConfig{}); err == nil {
		t.Error("Check with no servers succeeded")
	}
	bad := config.SMTPServer{Host: "127.0.0.1", Port: 25, TLS: "sometimes"}
	if err := Check(context.Background(), SMTPConfig{Servers: []config.SMTPServer{bad}}); err == nil {
		t.Error("Check with tls=sometimes succeeded")
	}
}

func TestCheckCancelled(t *testing.T) {
	srv := smtptest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Check(ctx, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}
