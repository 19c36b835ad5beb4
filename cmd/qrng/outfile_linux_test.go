package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The -o rule (README, "The command"): a file is written whole or not at
// all; an existing file keeps its mode, owner, group, links and
// attributes; symbolic links are followed to the end of their chain and
// never replaced; errors name the user's file.

// inode is fi's inode number: the same file, not a new one renamed over.
func inode(t *testing.T, name string) uint64 {
	t.Helper()
	fi, err := os.Stat(name)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// asUser runs qrng as a user who is not root, since root passes every
// permission check: this process's own user when it is not root, else
// nobody (uid 65534), with the test binary copied where nobody can run
// it. dirs are made reachable for that user.
type asUser struct {
	exe      string
	cred     *syscall.Credential // nil: this process's user
	uid, gid int
}

const nobody = 65534

func unprivileged(t *testing.T) asUser {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	if os.Geteuid() != 0 {
		return asUser{exe: self, uid: os.Geteuid(), gid: os.Getegid()}
	}
	dir := reachableDir(t)
	exe := filepath.Join(dir, "qrng.test")
	src, err := os.Open(self)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	return asUser{exe: exe, cred: &syscall.Credential{Uid: nobody, Gid: nobody}, uid: nobody, gid: nobody}
}

// reachableDir is a new folder that every user can enter and read (not
// write), with its parents.
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	return dir
}

func (u asUser) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var attrs *syscall.SysProcAttr
	if u.cred != nil {
		attrs = &syscall.SysProcAttr{Credential: u.cred}
	}
	p := startQrngAs(t, u.exe, attrs, nil, nil, nil, args...)
	code := p.wait(t)
	return code, p.stderr.String()
}

// Issue 18, item 2: a chain of links is followed to its end, however
// long and wherever its links point; no link of it is replaced.
func TestOutputFollowsTheWholeChainOfLinks(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	isLink := func(name, to string) {
		t.Helper()
		got, err := os.Readlink(at(name))
		require.NoError(t, err, "%s is still a link", name)
		assert.Equal(t, to, got)
	}

	// ln -s b a; ln -s nothing.txt b: the file is created at the end.
	require.NoError(t, os.Symlink("b", at("a")))
	require.NoError(t, os.Symlink("nothing.txt", at("b")))
	r := runCmd(t, nil, "bytes", "-n", "32", "-o", at("a"))
	require.Equal(t, 0, r.code, r.stderr)
	isLink("a", "b")
	isLink("b", "nothing.txt")
	data, err := os.ReadFile(at("nothing.txt"))
	require.NoError(t, err)
	assert.Len(t, data, 32)

	// A chain through a folder, each link relative to its own folder, to
	// an existing file.
	require.NoError(t, os.Mkdir(at("sub"), 0o755))
	require.NoError(t, os.WriteFile(at("end.bin"), []byte("old"), 0o600))
	require.NoError(t, os.Symlink("sub/c", at("x")))
	require.NoError(t, os.Symlink("../end.bin", at("sub/c")))
	r = runCmd(t, nil, "bytes", "-n", "8", "-o", at("x"))
	require.Equal(t, 0, r.code, r.stderr)
	isLink("x", "sub/c")
	isLink("sub/c", "../end.bin")
	data, err = os.ReadFile(at("end.bin"))
	require.NoError(t, err)
	assert.Len(t, data, 8)

	// ".." after a linked folder is the linked folder's parent, as the
	// system reads the name, not the name's parent as text.
	require.NoError(t, os.MkdirAll(at("real/deep"), 0o755))
	require.NoError(t, os.Symlink("real/deep", at("shortcut")))
	r = runCmd(t, nil, "bytes", "-n", "4", "-o", at("shortcut")+"/../four.bin")
	require.Equal(t, 0, r.code, r.stderr)
	assert.FileExists(t, at("real/four.bin"))
	assert.NoFileExists(t, at("four.bin"))

	assert.ElementsMatch(t, []string{"a", "b", "nothing.txt", "sub", "end.bin", "x", "real", "shortcut"}, dirNames(t, dir),
		"no partial file, no link replaced")

	// A chain that ends at a device or a pipe (/dev/stdout: a pipe here)
	// is refused as such.
	require.NoError(t, os.Symlink(os.DevNull, at("null")))
	assertUsageError(t, runCmd(t, nil, "bytes", "-n", "4", "-o", at("null")), "not a regular file")
	p := startQrng(t, map[string]string{}, nil, nil, "bytes", "-n", "4", "-o", "/dev/stdout")
	assert.Equal(t, 2, p.wait(t))
	assert.Contains(t, p.stderr.String(), "qrng: -o /dev/stdout: not a regular file")
}

// Issue 18, item 2: a loop of links is refused before anything is
// fetched, and left as it was.
func TestOutputRefusesALoopOfLinks(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	require.NoError(t, os.Symlink("self", at("self")))
	require.NoError(t, os.Symlink("y", at("x")))
	require.NoError(t, os.Symlink("x", at("y")))
	require.NoError(t, os.Symlink("self/inside.bin", at("through")))
	srv := qrngtest.Start(t, qrngtest.Options{})
	env := map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}
	for _, args := range [][]string{
		{"bytes", "-n", "32", "-o", at("self")},
		{"bytes", "-n", "32", "-o", at("x")},
		{"bytes", "-n", "32", "-o", at("through")},
		{"ints", "-n", "3", "-o", at("self")},
		{"floats", "-o", at("y")},
	} {
		assertUsageError(t, runCmd(t, env, args...), "a loop of symbolic links")
	}
	assert.Zero(t, srv.Counters().TokenRequests+srv.Counters().RandomRequests, "nothing fetched")
	for name, to := range map[string]string{"self": "self", "x": "y", "y": "x", "through": "self/inside.bin"} {
		got, err := os.Readlink(at(name))
		require.NoError(t, err)
		assert.Equal(t, to, got)
	}
	assert.ElementsMatch(t, []string{"self", "x", "y", "through"}, dirNames(t, dir))
}

// Issue 18, item 7: an existing file keeps its mode and its hard links:
// the new bytes are its content, the file stays the same file.
func TestOutputKeepsTheExistingFilesModeAndLinks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shared.bin")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o644))
	require.NoError(t, os.Chmod(file, 0o644))
	r := runCmd(t, nil, "bytes", "-n", "16", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "an existing file keeps its mode")
	assert.EqualValues(t, 16, st.Size())

	other := filepath.Join(dir, "other-name.bin")
	require.NoError(t, os.Link(file, other))
	before := inode(t, file)
	r = runCmd(t, nil, "ints", "-n", "4", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	a, err := os.ReadFile(file)
	require.NoError(t, err)
	b, err := os.ReadFile(other)
	require.NoError(t, err)
	assert.Len(t, strings.Fields(string(a)), 4)
	assert.Equal(t, a, b, "both names have the new content")
	assert.Equal(t, before, inode(t, file), "the same file, written in place")
	assert.Equal(t, before, inode(t, other))
	st, err = os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	assert.ElementsMatch(t, []string{"shared.bin", "other-name.bin"}, dirNames(t, dir))
}

// Issue 18, item 7: extended attributes (an ACL, user attributes) stay.
func TestOutputKeepsExtendedAttributes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tagged.bin")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o600))
	if err := syscall.Setxattr(file, "user.qrng-test", []byte("keep me"), 0); err != nil {
		t.Skipf("no user extended attributes here: %v", err)
	}
	before := inode(t, file)
	r := runCmd(t, nil, "bytes", "-n", "16", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(file, "user.qrng-test", buf)
	require.NoError(t, err, "the attribute is gone")
	assert.Equal(t, "keep me", string(buf[:n]))
	assert.Equal(t, before, inode(t, file))
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Len(t, data, 16)
}

// Issue 18, item 7: a writable file in a folder qrng cannot write is
// written (in place); a new file there, or a file qrng may not write, is
// refused before anything is fetched, with an error naming the user's
// file and not a hidden temporary one.
func TestOutputInAFolderItCannotWrite(t *testing.T) {
	u := unprivileged(t)
	dir := reachableDir(t)
	file := filepath.Join(dir, "writable.bin")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o644))
	require.NoError(t, os.Chown(file, u.uid, u.gid))
	require.NoError(t, os.Chmod(dir, 0o555)) // nobody, not even the owner when not root, may add a name
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	before := inode(t, file)

	code, stderr := u.run(t, "bytes", "-n", "16", "-o", file)
	require.Equal(t, 0, code, stderr)
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.EqualValues(t, 16, st.Size())
	assert.Equal(t, before, inode(t, file))
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	code, stderr = u.run(t, "bytes", "-n", "16", "-o", filepath.Join(dir, "new.bin"))
	assert.Equal(t, 1, code)
	assert.Regexp(t, `^qrng: -o .*/new.bin: cannot create it: permission denied\n$`, stderr)

	readOnly := filepath.Join(dir, "read-only.bin")
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(readOnly, []byte("keep"), 0o444))
	require.NoError(t, os.Chown(readOnly, u.uid, u.gid))
	require.NoError(t, os.Chown(dir, u.uid, u.gid)) // a folder it may write: rename could replace the file
	code, stderr = u.run(t, "bytes", "-n", "16", "-o", readOnly)
	assert.Equal(t, 1, code)
	assert.Regexp(t, `^qrng: -o .*/read-only.bin: cannot write it: permission denied\n$`, stderr)
	data, err := os.ReadFile(readOnly)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(data))
	assert.NotContains(t, stderr, "qrng-partial")
	assert.ElementsMatch(t, []string{"writable.bin", "read-only.bin"}, dirNames(t, dir))
}

// Issue 18, item 7: an existing file keeps its owner and group. Making a
// file of another owner needs root.
func TestOutputKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file another user owns")
	}
	dir := reachableDir(t)
	// Root can give the staged file the owner: rename, owner kept.
	file := filepath.Join(dir, "theirs.bin")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o640))
	require.NoError(t, os.Chown(file, nobody, nobody))
	r := runCmd(t, nil, "bytes", "-n", "16", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	st, err := os.Stat(file)
	require.NoError(t, err)
	own := st.Sys().(*syscall.Stat_t)
	assert.EqualValues(t, nobody, own.Uid)
	assert.EqualValues(t, nobody, own.Gid)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())

	// A user who cannot give it (nobody writing root's file, in a
	// folder nobody may write): in place, owner kept.
	shared := reachableDir(t)
	require.NoError(t, os.Chmod(shared, 0o777))
	rootFile := filepath.Join(shared, "roots.bin")
	require.NoError(t, os.WriteFile(rootFile, []byte("old"), 0o666))
	require.NoError(t, os.Chmod(rootFile, 0o666))
	before := inode(t, rootFile)
	code, stderr := unprivileged(t).run(t, "bytes", "-n", "16", "-o", rootFile)
	require.Equal(t, 0, code, stderr)
	st, err = os.Stat(rootFile)
	require.NoError(t, err)
	assert.EqualValues(t, 0, st.Sys().(*syscall.Stat_t).Uid, "root still owns it")
	assert.EqualValues(t, 16, st.Size())
	assert.Equal(t, before, inode(t, rootFile))
	assert.Equal(t, []string{"roots.bin"}, dirNames(t, shared))
}

// Issue 18, item 3: a run killed outright (SIGKILL: nothing can clean up)
// leaves no partial file: the bytes are staged in an anonymous file.
func TestKilledRunLeavesNoPartialFile(t *testing.T) {
	for _, existing := range []bool{false, true} {
		srv := qrngtest.Start(t, qrngtest.Options{})
		srv.Inject(qrngtest.Fault{}, qrngtest.Fault{Latency: time.Hour, Times: -1})
		dir := t.TempDir()
		file := filepath.Join(dir, "out.bin")
		if existing {
			require.NoError(t, os.WriteFile(file, []byte("precious"), 0o644))
		}
		p := startQrng(t, map[string]string{"QCI_TOKEN": srv.Token, "QCI_API_URL": srv.URL}, nil, nil, "bytes", "-n", "2MiB", "-o", file)
		require.Eventually(t, func() bool { return srv.Counters().RandomRequests >= 2 }, 60*time.Second, 10*time.Millisecond,
			"stderr: %q", p.stderr.String())
		p.signal(t, syscall.SIGKILL)
		p.wait(t)
		if existing {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			assert.Equal(t, "precious", string(data))
			assert.Equal(t, []string{"out.bin"}, dirNames(t, dir))
		} else {
			assert.Empty(t, dirNames(t, dir), "no partial file")
		}
	}
}

// The -o rule holds where the file system has no anonymous files (a
// named hidden file is staged instead) and where /proc cannot name an
// anonymous file (its bytes are copied to a named one at commit): the
// same outcomes, and no staged file left after a failure or an
// interruption. (The test seams set these cases in this process.)
func TestOutputWithoutAnonymousFiles(t *testing.T) {
	for _, seam := range []*bool{&seamNoAnonymous, &seamNoProc} {
		*seam = true
		dir := t.TempDir()
		file := filepath.Join(dir, "out.bin")
		r := runCmd(t, nil, "bytes", "-n", "4KiB", "-o", file)
		require.Equal(t, 0, r.code, r.stderr)
		st, err := os.Stat(file)
		require.NoError(t, err)
		assert.EqualValues(t, 4096, st.Size())
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

		require.NoError(t, os.Chmod(file, 0o640))
		r = runCmd(t, nil, "ints", "-n", "3", "-o", file)
		require.Equal(t, 0, r.code, r.stderr)
		st, err = os.Stat(file)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "the existing file's mode")

		require.NoError(t, os.Link(file, filepath.Join(dir, "link.bin")))
		before := inode(t, file)
		r = runCmd(t, nil, "bytes", "-n", "16", "-o", file)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, before, inode(t, file), "in place")
		data, err := os.ReadFile(filepath.Join(dir, "link.bin"))
		require.NoError(t, err)
		assert.Len(t, data, 16)

		r = runCmd(t, oneBatchServer(t), "bytes", "-n", "2MiB", "-o", filepath.Join(dir, "failed.bin"))
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, `nothing kept: "`)
		assert.ElementsMatch(t, []string{"out.bin", "link.bin"}, dirNames(t, dir), "nothing staged left behind")
		*seam = false
	}
}
