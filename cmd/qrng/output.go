package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// outFile is the file -o names. Bytes go to a temporary file in the same
// folder, private to its owner, which commit renames over the target; until
// then the target is untouched, and discard removes the temporary file.
// A symbolic link stays a link: the file it names is replaced.
type outFile struct {
	name    string // as the user gave it
	target  string // name, with symbolic links resolved
	existed bool
	tmp     *os.File // nil once committed or discarded
}

// checkOutFile refuses a name that is not, or would not be, a regular
// file: renaming over a device or a directory is never what was meant.
func checkOutFile(name string) error {
	if st, err := os.Stat(name); err == nil && !st.Mode().IsRegular() {
		return usagef("-o %s: not a regular file (for a device or a pipe, redirect stdout instead)", name)
	}
	return nil
}

func createOutFile(name string) (*outFile, error) {
	o := &outFile{name: name, target: name}
	if t, err := filepath.EvalSymlinks(name); err == nil {
		o.target, o.existed = t, true
	} else if link, lerr := os.Readlink(name); lerr == nil {
		// A link to nothing yet: the file is created where it points.
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(name), link)
		}
		o.target = link
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.target), "."+filepath.Base(o.target)+".*.qrng-partial")
	if err != nil {
		return nil, fmt.Errorf("qrng: -o %s: %w", name, err)
	}
	o.tmp = tmp
	return o, nil
}

func (o *outFile) Write(p []byte) (int, error) { return o.tmp.Write(p) }

// commit makes the written bytes the target's content.
func (o *outFile) commit() error {
	tmp := o.tmp
	err := tmp.Sync()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), o.target)
	}
	if err != nil {
		os.Remove(tmp.Name())
		o.tmp = nil
		return fmt.Errorf("qrng: -o %s: %w; %s", o.name, err, o.kept())
	}
	o.tmp = nil
	return nil
}

// discard removes the temporary file, unless commit has run.
func (o *outFile) discard() {
	if o.tmp != nil {
		o.tmp.Close()
		os.Remove(o.tmp.Name())
		o.tmp = nil
	}
}

// kept says what a failed or interrupted run left at the target.
func (o *outFile) kept() string {
	if o.existed {
		return fmt.Sprintf("nothing kept: %q is unchanged", o.name)
	}
	return fmt.Sprintf("nothing kept: %q was not created", o.name)
}
