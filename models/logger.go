package models

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// slowQuery is how long a statement may take before it is logged.
const slowQuery = 500 * time.Millisecond

// queryLogger logs failed and slow statements only. GORM's own slog
// logger renders every statement's SQL even when it will not log it, which
// costs more than the statement on a busy writer.
type queryLogger struct {
	log *slog.Logger
}

func gormLogger(l *slog.Logger) logger.Interface {
	if l == nil {
		return logger.Discard
	}
	return queryLogger{log: l}
}

func (q queryLogger) LogMode(logger.LogLevel) logger.Interface { return q }

func (q queryLogger) Info(ctx context.Context, msg string, args ...any) {
	q.log.InfoContext(ctx, msg, slog.Any("args", args))
}

func (q queryLogger) Warn(ctx context.Context, msg string, args ...any) {
	q.log.WarnContext(ctx, msg, slog.Any("args", args))
}

func (q queryLogger) Error(ctx context.Context, msg string, args ...any) {
	q.log.ErrorContext(ctx, msg, slog.Any("args", args))
}

func (q queryLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound) && !errors.Is(err, context.Canceled):
		sql, rows := fc()
		q.log.WarnContext(ctx, "sql failed", slog.String("sql", truncate(sql, 500)), slog.Int64("rows", rows),
			slog.Duration("duration", elapsed), slog.Any("error", err))
	case elapsed > slowQuery:
		sql, rows := fc()
		q.log.WarnContext(ctx, "slow sql", slog.String("sql", truncate(sql, 500)), slog.Int64("rows", rows),
			slog.Duration("duration", elapsed))
	}
}
