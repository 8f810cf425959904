package stories

import (
	"testing"
	"time"
)

func TestCanonicalURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://News.Example.COM/Path/A?b=1&a=2#frag", "https://news.example.com/Path/A?b=1&a=2"},
		{"HTTP://example.com:80", "http://example.com/"},
		{"https://example.com:8443/x", "https://example.com:8443/x"},
		{"http://example.com:443/x", "http://example.com:443/x"},
		{"  https://[::1]:443/x  ", "https://[::1]/x"},
	}
	for _, tc := range tests {
		got, err := CanonicalURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "/relative", "mailto:a@b.c", "javascript:alert(1)", "https://", "https://user:pw@example.com/"} {
		if got, err := CanonicalURL(bad); err == nil {
			t.Errorf("CanonicalURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestPlainText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Plain", "Plain"},
		{"<h1>Head</h1><p>line\r\nbreak</p>", "Head line break"},
		{"Tom &amp; Jerry &lt;3", "Tom & Jerry <3"},
		{"a<script>evil()</script>b<style>x{}</style>c", "abc"},
		{"tab\there\x00\x07", "tab here"},
		{"a < b", "a < b"},
	}
	for _, tc := range tests {
		if got := PlainText(tc.in); got != tc.want {
			t.Errorf("PlainText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{5 * time.Minute, 1, 10 * time.Minute},
		{5 * time.Minute, 3, 40 * time.Minute},
		{5 * time.Minute, 50, 6 * time.Hour},
		{24 * time.Hour, 2, 24 * time.Hour},
	}
	for _, tc := range tests {
		if got := backoff(tc.interval, tc.failures); got != tc.want {
			t.Errorf("backoff(%s, %d) = %s, want %s", tc.interval, tc.failures, got, tc.want)
		}
	}
}
