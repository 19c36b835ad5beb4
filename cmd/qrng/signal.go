package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// signalled is the cause of the command's context when a signal ended it.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "interrupted by " + signalName(s.sig) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return sig.String()
}

// stopSignals end a command: each one cancels its context, so that it
// stops, says how far it got and leaves no partial file (a terminal
// closed, SIGHUP, and SIGQUIT, which would otherwise kill the process
// with a goroutine dump, included).
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// notifyContext is signal.NotifyContext for stopSignals, with the signal
// as the context's cause. After the first signal the handlers are reset,
// so a second one ends the process at once.
func notifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	// A closed pipe on stdout must come back as EPIPE from Write, which
	// the commands handle (a stream ends with status 0), not kill the
	// process as Go does by default for fd 1 and 2.
	signal.Ignore(syscall.SIGPIPE)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals...)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			sig, _ := s.(syscall.Signal)
			cancel(signalled{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// interruption is the signal that ended ctx; SIGINT when ctx ended some
// other way (a test cancelling it).
func interruption(ctx context.Context) syscall.Signal {
	var s signalled
	if errors.As(context.Cause(ctx), &s) && s.sig != 0 {
		return s.sig
	}
	return syscall.SIGINT
}

// interrupted is returned by a command that stopped because its context
// ended; done says how far it got ("after 3 of 10 values").
type interrupted struct{ done string }

func (e *interrupted) Error() string { return "interrupted " + e.done }
