//go:build !linux

package main

import (
	"errors"
	"io/fs"
	"os"
)

// errNoAnonymous says the system cannot make anonymous files: staging
// then uses a named file.
var errNoAnonymous = errors.New("no anonymous files here")

// openAnonymous is Linux's O_TMPFILE; elsewhere staging uses a named file.
func openAnonymous(string, fs.FileMode) (*os.File, error) { return nil, errNoAnonymous }

func linkAnonymous(*os.File, string) error { return errNoAnonymous }

// hasExtendedAttrs is checked on Linux only.
func hasExtendedAttrs(string) bool { return false }
