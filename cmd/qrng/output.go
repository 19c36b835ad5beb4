package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// outFile is the file -o names, written whole or not at all. The bytes
// are staged in a file of their own until commit; until then the user's
// file is untouched, and discard leaves nothing behind. Commit then
// either renames the staged file over the target (a new file, or an
// existing one whose mode, owner and group the staged file can take and
// which has one link and no extended attributes), or, where a rename
// would lose what the user has (hard links, an owner it cannot take, an
// ACL, a folder it cannot write), copies the staged bytes into the
// existing file in place. Symbolic links are followed to the end of their
// chain and never replaced. See README, "The command", for the rule.
//
// An outFile is used by one goroutine.
type outFile struct {
	name    string // as the user gave it
	target  string // name, with its chain of symbolic links followed
	existed bool
	inPlace *os.File    // the existing file, open for writing, when written in place
	stage   *os.File    // the bytes written so far; nil once committed or discarded
	named   bool        // stage has a name in the target's folder, removed by discard
	perm    fs.FileMode // the mode the file gets at commit, by rename
	size    int64       // bytes written
	nothing string      // what a failed run leaves, for messages
}

// Test seams: stage as where the file system has no anonymous files
// (a named hidden file), and commit as where /proc cannot name an
// anonymous file (a copy to a named one).
var seamNoAnonymous, seamNoProc bool

// maxLinks is how many symbolic links a chain may have: Linux's own
// limit for one path lookup.
const maxLinks = 40

var errLinkLoop = errors.New("a loop of symbolic links (or a chain of more than 40)")

// resolveLinks follows name's chain of symbolic links to its end, the
// file the bytes are for, and returns it with its FileInfo (nil when the
// chain ends at a name that does not exist yet).
func resolveLinks(name string) (string, fs.FileInfo, error) {
	p := name
	for range maxLinks + 1 {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return p, nil, nil
		case errors.Is(err, syscall.ELOOP):
			return "", nil, errLinkLoop // a loop in a folder of the path
		case err != nil:
			return "", nil, errors.Unwrap(err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return p, fi, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", nil, errors.Unwrap(err)
		}
		if !filepath.IsAbs(link) {
			// Not filepath.Join: cleaning "dir/link/../x" lexically would
			// be wrong when link is itself a symbolic link.
			link = dirOf(p) + string(filepath.Separator) + link
		}
		p = link
	}
	return "", nil, errLinkLoop
}

// dirOf is p's folder, without cleaning p (see resolveLinks).
func dirOf(p string) string {
	i := strings.LastIndexByte(p, filepath.Separator)
	switch {
	case i < 0:
		return "."
	case i == 0:
		return string(filepath.Separator)
	}
	return p[:i]
}

// checkOutFile refuses, before anything is fetched, a name that cannot
// be the file meant: one that is, or would be, something other than a
// regular file, or a loop of symbolic links.
func checkOutFile(name string) error {
	if fi, err := os.Stat(name); err == nil && !fi.Mode().IsRegular() {
		// Followed by the system: /dev/stdout and the like end at a pipe
		// or a terminal, which no link walk can name.
		return usagef("-o %s: not a regular file (for a device or a pipe, redirect stdout instead)", name)
	}
	target, fi, err := resolveLinks(name)
	switch {
	case errors.Is(err, errLinkLoop):
		return usagef("-o %s: %v", name, err)
	case err != nil:
		return nil // createOutFile names the problem
	case fi != nil && !fi.Mode().IsRegular():
		return usagef("-o %s: not a regular file (for a device or a pipe, redirect stdout instead)", name)
	case strings.HasSuffix(target, string(filepath.Separator)):
		return usagef("-o %s: not a regular file (a folder)", name)
	}
	return nil
}

// createOutFile prepares to write name. newPerm is the permission of a
// file that does not exist yet. Every check that can fail before the
// bytes are written is made here, so that nothing is fetched for a file
// that cannot be written.
func createOutFile(name string, newPerm fs.FileMode) (*outFile, error) {
	target, fi, err := resolveLinks(name)
	if err != nil {
		return nil, fmt.Errorf("qrng: -o %s: %v", name, err)
	}
	o := &outFile{name: name, target: target, existed: fi != nil}
	o.nothing = fmt.Sprintf("nothing kept: %q was not created", name)
	if fi == nil {
		o.perm = newPerm
		return o, o.stageBeside(nil)
	}
	o.nothing = fmt.Sprintf("nothing kept: %q is unchanged", name)
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("qrng: -o %s: not a regular file", name)
	}
	// Opened for writing now, not truncated: a file the user cannot write
	// is refused before anything is fetched, and is the one written in
	// place if it comes to that.
	dst, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return nil, o.errorf("cannot write it", err)
	}
	o.perm = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := o.stageBeside(dst); err != nil {
		dst.Close()
		return nil, err
	}
	return o, nil
}

// stageBeside makes the staged file in the target's folder, private to
// its owner until commit. For an existing file (dst open), it also
// decides how commit will write: by rename when the staged file can
// become that file in every respect the user sees, else in place (staged
// in the folder if it is writable, else in the system's temporary
// folder).
func (o *outFile) stageBeside(dst *os.File) error {
	dir := dirOf(o.target)
	st, named, err := openStage(dir, "."+filepath.Base(o.target)+".", 0o600)
	if err != nil {
		if dst == nil || !isPermission(err) {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("qrng: -o %s: no such folder %s", o.name, dir)
			}
			return o.errorf("cannot create it", err)
		}
		// A folder it cannot write: only in place can the file change.
		if st, named, err = openStage(os.TempDir(), ".qrng-stage.", 0o600); err != nil {
			return o.errorf("cannot stage the bytes", err)
		}
		if named { // a name in a folder of no concern to the user: drop it now
			if os.Remove(st.Name()) == nil {
				named = false
			}
		}
		o.stage, o.named, o.inPlace = st, named, dst
		return nil
	}
	o.stage, o.named = st, named
	if dst == nil {
		return nil
	}
	if !o.canTakeOver(dst) {
		o.inPlace = dst
		return nil
	}
	dst.Close() // replaced by rename
	return nil
}

// canTakeOver reports whether the staged file, renamed over the existing
// file dst, keeps all the user has: one link, no extended attributes or
// ACL, and the same owner and group (which it tries to take).
func (o *outFile) canTakeOver(dst *os.File) bool {
	dfi, err := dst.Stat()
	if err != nil {
		return false
	}
	want, ok := ownerOf(dfi)
	if !ok {
		return true // no owners or links here (Windows): rename keeps the mode
	}
	if want.links != 1 || hasExtendedAttrs(o.target) {
		return false
	}
	sfi, err := o.stage.Stat()
	if err != nil {
		return false
	}
	if have, _ := ownerOf(sfi); have.uid != want.uid || have.gid != want.gid {
		return o.stage.Chown(want.uid, want.gid) == nil // the mode is set at commit, after
	}
	return true
}

// openStage creates a file in dir for staged bytes: an anonymous one
// where the system has them (nothing is left behind, whatever ends the
// process), else one named prefix + random + ".qrng-partial".
func openStage(dir, prefix string, perm fs.FileMode) (f *os.File, named bool, err error) {
	if !seamNoAnonymous {
		f, err = openAnonymous(dir, perm)
		if !errors.Is(err, errNoAnonymous) {
			return f, false, err
		}
	}
	f, err = os.CreateTemp(dir, prefix+"*.qrng-partial")
	if err != nil {
		return nil, false, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, false, err
	}
	return f, true, nil
}

func isPermission(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

func (o *outFile) Write(p []byte) (int, error) {
	n, err := o.stage.Write(p)
	o.size += int64(n)
	if err != nil {
		return n, o.errorf("writing", err)
	}
	return n, nil
}

// commit makes the written bytes the target's content. An error says
// what the target holds after it.
func (o *outFile) commit() error {
	defer o.discard()
	if err := o.replace(); err != nil {
		return fmt.Errorf("qrng: %s; %s", bare(err), o.nothing)
	}
	return nil
}

func (o *outFile) replace() error {
	if o.inPlace != nil {
		return o.copyInPlace()
	}
	err := o.stage.Chmod(o.perm) // exactly, whatever the umask
	if err == nil {
		err = o.stage.Sync()
	}
	if err != nil {
		return o.errorf("writing", err)
	}
	if o.named {
		err = os.Rename(o.stage.Name(), o.target)
	} else {
		err = o.linkAndRename()
	}
	if err != nil {
		return o.errorf("replacing it", err)
	}
	o.named = false // renamed: nothing to remove
	return nil
}

// linkAndRename gives the anonymous staged file a hidden name in the
// target's folder and renames it over the target: the name exists only
// between the two calls.
func (o *outFile) linkAndRename() error {
	dir := dirOf(o.target)
	var tmp string
	err := errNoAnonymous // seamNoProc: as without /proc
	for i := 0; i < 100 && !seamNoProc; i++ {
		var r [8]byte
		rand.Read(r[:])
		tmp = dir + string(filepath.Separator) + "." + filepath.Base(o.target) + "." + hex.EncodeToString(r[:]) + ".qrng-partial"
		if err = linkAnonymous(o.stage, tmp); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		// No /proc to link through: copy the bytes to a named file.
		if tmp, err = o.copyToNamed(dir); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, o.target); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// copyToNamed copies the staged bytes to a new hidden file in dir, with
// the staged file's mode, owner and group, and returns its name.
func (o *outFile) copyToNamed(dir string) (string, error) {
	fi, err := o.stage.Stat()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(o.target)+".*.qrng-partial")
	if err != nil {
		return "", err
	}
	_, err = o.stage.Seek(0, io.SeekStart)
	if err == nil {
		_, err = io.Copy(f, io.LimitReader(o.stage, o.size))
	}
	if own, ok := ownerOf(fi); ok && err == nil {
		if have, _ := f.Stat(); have != nil {
			if h, _ := ownerOf(have); h.uid != own.uid || h.gid != own.gid {
				err = f.Chown(own.uid, own.gid)
			}
		}
	}
	if err == nil {
		err = f.Chmod(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// copyInPlace overwrites the existing file with the staged bytes through
// its own inode, so that its mode, owner, links and attributes stay. Only
// a failure during this copy can leave the file part old, part new.
func (o *outFile) copyInPlace() error {
	dst := o.inPlace
	if _, err := o.stage.Seek(0, io.SeekStart); err != nil {
		return o.errorf("reading the staged bytes", err)
	}
	o.nothing = fmt.Sprintf("%q may be partly overwritten", o.name)
	n, err := io.Copy(dst, io.LimitReader(o.stage, o.size))
	if err == nil && n != o.size {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = dst.Truncate(o.size)
	}
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	o.inPlace = nil
	if err != nil {
		return o.errorf("writing it in place", err)
	}
	return nil
}

// discard drops the staged bytes, unless commit has run.
func (o *outFile) discard() {
	if o.stage != nil {
		o.stage.Close()
		if o.named {
			os.Remove(o.stage.Name())
		}
		o.stage = nil
	}
	if o.inPlace != nil {
		o.inPlace.Close()
		o.inPlace = nil
	}
}

// kept says what a failed or interrupted run left at the target.
func (o *outFile) kept() string { return o.nothing }

// errorf is an error about the user's file: it names the file as the user
// gave it, and of the system's error only the reason, never the name of
// the staged file.
func (o *outFile) errorf(what string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("qrng: -o %s: %s: %w", o.name, what, err)
}
