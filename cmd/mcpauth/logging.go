package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// logLevelRow is the --log-level setting of serve and proxy, bound to dst.
func logLevelRow(dst *string) setting {
	return setting{flag: "log-level", env: "MCPAUTH_LOG_LEVEL", key: "log_level", def: "info",
		help: "least severe log records written: debug, info, warn or error",
		set: checkedText(dst, func(v string) error {
			if !slices.Contains([]string{"debug", "info", "warn", "error"}, v) {
				return errors.New("use debug, info, warn or error")
			}
			return nil
		})}
}

// newLogger is the slog logger of serve and proxy on w: text or JSON
// records (format) at level and above.
func newLogger(format, level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // checked by logLevelRow; "" is info
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// announce tells the operator msg, a line such as "listening on ...", as a
// log record with attrs, and also as a plain line on stdout (after prefix)
// for a person reading text logs. With JSON logs it is the record alone, so
// that nothing but JSON lines comes out.
func announce(stdout io.Writer, logger *slog.Logger, format, prefix, msg string, attrs ...any) {
	if format != "json" {
		fmt.Fprintf(stdout, "%s: %s\n", prefix, msg)
	}
	logger.Info(msg, attrs...)
}

// logExit, with JSON logs, writes the error a command ends with as a log
// record instead of the plain "mcpauth: ..." line exitCode would print, and
// keeps its exit status.
func logExit(err error, logger *slog.Logger, format string) error {
	if err == nil || format != "json" {
		return err
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if err.Error() != "" {
		logger.Error("exiting", "err", err)
	}
	return &exitError{code: code}
}
