package main

import (
	"io"
	"log/slog"
)

// newLogger prints the library's warnings as plain lines on stderr.
func newLogger(w io.Writer) *slog.Logger { return newLoggerAt(w, slog.LevelWarn) }

// newLoggerAt is newLogger from level up (pool fill logs its top-ups at Info).
func newLoggerAt(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}
