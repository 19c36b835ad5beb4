package main

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// oTmpfile is Linux's O_TMPFILE (__O_TMPFILE | O_DIRECTORY), which
// package syscall does not define.
const oTmpfile = 0o20000000 | syscall.O_DIRECTORY

// atSymlinkFollow is linkat's AT_SYMLINK_FOLLOW.
const atSymlinkFollow = 0x400

// errNoAnonymous says the folder's file system cannot make anonymous
// files: staging then uses a named file.
var errNoAnonymous = errors.New("no anonymous files here")

// openAnonymous opens a file in dir that has no name (O_TMPFILE): it
// vanishes when closed, or when the process ends however it ends, unless
// linkAnonymous names it.
func openAnonymous(dir string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDWR|oTmpfile, perm)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EINVAL) {
		return nil, errNoAnonymous // a file system, or a kernel, without O_TMPFILE
	}
	return f, err
}

// linkAnonymous gives f, opened by openAnonymous, the name name.
func linkAnonymous(f *os.File, name string) error {
	old, err := syscall.BytePtrFromString("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return err
	}
	dst, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	cwd := atFDCWD
	_, _, errno := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(cwd), uintptr(unsafe.Pointer(old)),
		uintptr(cwd), uintptr(unsafe.Pointer(dst)), atSymlinkFollow, 0)
	if errno != 0 {
		return &os.LinkError{Op: "link", Old: "(staged bytes)", New: name, Err: errno}
	}
	return nil
}

const atFDCWD = -100 // AT_FDCWD

// hasExtendedAttrs reports whether name carries extended attributes that
// a new file would not get: an ACL, user or trusted attributes. Security
// labels (security.*) are left out: the system gives a new file its own.
func hasExtendedAttrs(name string) bool {
	size, err := syscall.Listxattr(name, nil)
	if err != nil || size <= 0 {
		return false
	}
	buf := make([]byte, size+256)
	size, err = syscall.Listxattr(name, buf)
	if err != nil {
		return true // it has some; which, it cannot tell: keep them
	}
	for _, attr := range strings.Split(string(buf[:size]), "\x00") {
		if attr != "" && !strings.HasPrefix(attr, "security.") {
			return true
		}
	}
	return false
}
