package subscribers

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"herald/models"
	"herald/models/testdb"
)

// BenchmarkSignupCommit measures the signup path below HTTP: validation
// and the group commit on a real SQLite file, with 16 goroutines signing up
// at once (go test -bench SignupCommit -benchtime 20000x ./subscribers/).
func BenchmarkSignupCommit(b *testing.B) {
	store := testdb.New(b)
	ctx := context.Background()
	if err := store.CreateSection(ctx, &models.Section{Slug: "politics-uk", Name: "Politics UK"}); err != nil {
		b.Fatal(err)
	}
	svc := New(store, Config{Tokens: NewTokens(make([]byte, 32)), ConsentText: "Yes", RequireConsent: true, Logger: benchLogger()})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = svc.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	var n atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := svc.Signup(ctx, SignupInput{Email: fmt.Sprintf("b%d@example.com", i), Sections: []string{"politics-uk"},
				Frequency: "daily", Consent: true, Form: "api", IP: "192.0.2.1", UserAgent: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchLogger() *slog.Logger {
	if os.Getenv("HERALD_BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
