package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README is the user's contract: these tests keep what it says true.

const repoRoot = "../.."

func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	return string(data)
}

// prose is the README without its fenced code blocks.
func prose(text string) string {
	var b strings.Builder
	fenced := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Every test, example, benchmark or fuzz target the README names (in
// backquotes, outside code blocks) exists in the repository, or is one
// the README defines in a code block of its own.
func TestReadmeCitesOnlyExistingTests(t *testing.T) {
	defined := map[string]bool{}
	def := regexp.MustCompile(`(?m)^func ((?:Test|Example|Benchmark|Fuzz)\w*)\(`)
	require.NoError(t, filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != repoRoot {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range def.FindAllStringSubmatch(string(data), -1) {
				defined[m[1]] = true
			}
		}
		return nil
	}))
	require.Contains(t, defined, "TestReadmeCitesOnlyExistingTests", "the walk found this file")
	// An example the README itself defines (TestDice) is its own: one of
	// these tests runs it.
	for _, m := range def.FindAllStringSubmatch(readme(t), -1) {
		defined[m[1]] = true
	}
	cited := regexp.MustCompile("`((?:Test|Example|Benchmark|Fuzz)[A-Za-z0-9_]*)`").FindAllStringSubmatch(prose(readme(t)), -1)
	require.NotEmpty(t, cited)
	seen := map[string]bool{}
	for _, m := range cited {
		if !seen[m[1]] {
			seen[m[1]] = true
			assert.True(t, defined[m[1]], "README.md cites %s, which no _test.go file defines", m[1])
		}
	}
	t.Logf("%d names cited, all defined", len(seen))
}

// Issue 18, item 12: every example of the README's size table reads as
// the table says, through the command's own flag (the small ones, by a
// run of qrng bytes), and every refused one is a usage error.
func TestReadmeSizeTable(t *testing.T) {
	text := readme(t)
	i := strings.Index(text, "| `-n` | bytes |")
	require.Positive(t, i, "the size table")
	rows := 0
	for _, row := range strings.Split(text[i:], "\n")[2:] {
		if !strings.HasPrefix(row, "| ") {
			break
		}
		cols := strings.Split(strings.Trim(row, "| "), " | ")
		require.Len(t, cols, 2, row)
		examples := regexp.MustCompile("`([^`]*)`").FindAllStringSubmatch(row, -1)
		require.NotEmpty(t, examples, row)
		for _, ex := range examples {
			in := ex[1]
			rows++
			if cols[0] == "refused" {
				_, _, err := parseSize(in)
				assert.Error(t, err, in)
				assertUsageError(t, runCmd(t, nil, "bytes", "-n", in, "-format", "hex"), "-n")
				continue
			}
			want, err := strconv.ParseInt(strings.ReplaceAll(cols[1], ",", ""), 10, 64)
			require.NoError(t, err, row)
			n, _, err := parseSize(in)
			require.NoError(t, err, in)
			assert.Equal(t, want, n, in)
			if want <= 1<<20 {
				r := runCmd(t, nil, "bytes", "-n", in, "-bits", "64", "-format", "raw")
				require.Equal(t, 0, r.code, "%s: %s", in, r.stderr)
				assert.Len(t, r.stdout, int(want), in)
			}
		}
	}
	assert.Greater(t, rows, 20, "the table's examples were read")
}

// Issue 18, item 14: the README's list of qrngtest options names every
// field of qrngtest.Options, and nothing else.
func TestReadmeListsEveryQrngtestOption(t *testing.T) {
	text := readme(t)
	i := strings.Index(text, "\nOptions: `")
	require.Positive(t, i, "the Options list")
	j := strings.Index(text[i:], "Faults:")
	require.Positive(t, j)
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("`([A-Z][A-Za-z]*)`").FindAllStringSubmatch(text[i:i+j], -1) {
		if !strings.HasPrefix(m[1], "Test") { // the test that backs the list
			listed[m[1]] = true
		}
	}
	var fields []string
	typ := reflect.TypeFor[qrngtest.Options]()
	for f := range typ.Fields() {
		if f.IsExported() {
			fields = append(fields, f.Name)
			assert.True(t, listed[f.Name], "README.md's Options list lacks %s", f.Name)
		}
	}
	for name := range listed {
		assert.Contains(t, fields, name, "README.md lists an option qrngtest.Options does not have")
	}
}

// goIn runs the go command in dir, offline, with the environment a user
// would have (this machine's go env may say -buildvcs=false).
func goIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-buildvcs=true", "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// Issue 18, items 11, 16 and 17: the README's way to use the module from
// a checkout works as written. The checkout is this tree's files,
// committed afresh (Go does not read version control in a linked git
// worktree, and the tree may hold changes not yet committed).
//   - go install ./cmd/qrng builds the command, and 'qrng version' names
//     the commit it was built from: a pseudo-version, as no release tag
//     names the commit;
//   - a module of one's own, with the README's replace directive and go
//     mod tidy, builds against the checkout, and the README's TestDice,
//     exactly as printed, compiles and passes in it.
func TestReadmeFromACheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and a module")
	}
	text := readme(t)
	root := gitOrSkip(t, ".", "rev-parse", "--show-toplevel")
	work := t.TempDir()
	checkout := filepath.Join(work, "qrng")
	for _, name := range strings.Split(gitOrSkip(t, root, "ls-files", "--cached", "--others", "--exclude-standard"), "\n") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(checkout, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(checkout, name), data, 0o644))
	}
	gitOrSkip(t, checkout, "init", "--quiet")
	gitOrSkip(t, checkout, "add", "-A")
	gitOrSkip(t, checkout, "-c", "user.name=qrng test", "-c", "user.email=test@invalid", "commit", "--quiet", "-m", "checkout")
	rev := gitOrSkip(t, checkout, "rev-parse", "HEAD")

	t.Run("go install ./cmd/qrng", func(t *testing.T) {
		require.Contains(t, text, "go install ./cmd/qrng")
		bin := t.TempDir()
		goIn(t, checkout, []string{"GOBIN=" + bin}, "install", "./cmd/qrng")
		got, err := exec.Command(filepath.Join(bin, "qrng"), "version").CombinedOutput()
		require.NoError(t, err, "%s", got)
		assert.Regexp(t, `^qrng v0\.0\.0-\d{14}-`+rev[:12]+` \(commit `+rev[:12]+`; go\S+ \S+/\S+\)\n$`, string(got))
	})

	t.Run("TestDice in a module of its own", func(t *testing.T) {
		replace := "go mod edit -replace github.com/qrng-go/qrng=../qrng"
		require.Contains(t, text, replace)
		start := strings.Index(text, "```go\nfunc TestDice(t *testing.T) {")
		require.Positive(t, start, "the README's TestDice")
		block := text[start+len("```go\n"):]
		block = block[:strings.Index(block, "```")]
		assert.Regexp(t, `t\.(Error|Fatal)`, block, "an example of testing must test something")
		user := filepath.Join(work, "dice")
		require.NoError(t, os.Mkdir(user, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(user, "dice_test.go"), []byte(`package dice

import (
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
)

`+block), 0o644))
		goIn(t, user, nil, "mod", "init", "example.com/dice")
		goIn(t, user, nil, strings.Fields(replace)[1:]...)
		goIn(t, user, nil, "mod", "tidy")
		out := goIn(t, user, nil, "test", "-count=1", "-v", "-run", "^TestDice$", ".")
		assert.Contains(t, out, "--- PASS: TestDice")
	})
}

// gitOrSkip runs git in dir, skipping the test where there is no git or
// no repository.
func gitOrSkip(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Skipf("git %s: %v (not a git checkout?)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// Issue 18, item 11: the README's word on releases, qrng.Version and the
// repository's tags agree: with no tag, the README says no release is
// tagged; with tags, the newest is v + qrng.Version.
func TestVersionAgreesWithTags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	tags := gitOrSkip(t, ".", "tag", "--list", "v*", "--sort=-v:refname")
	const untagged = "No release has been tagged yet"
	says := func(s string) bool { return strings.Contains(string(readme), s) }
	if tags == "" {
		assert.True(t, says(untagged), "README.md should say %q", untagged)
		assert.True(t, says("`qrng.Version` ("+qrng.Version+")"), "README.md should name qrng.Version, %s", qrng.Version)
		return
	}
	newest := strings.Fields(tags)[0]
	assert.Equal(t, newest, "v"+qrng.Version, "the newest tag and qrng.Version")
	assert.False(t, says(untagged), "README.md still says %q", untagged)
}
