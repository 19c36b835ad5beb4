//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// fileOwner is who owns a file and how many names it has.
type fileOwner struct {
	uid, gid int
	links    uint64
}

// ownerOf reads fi's owner, group and link count.
func ownerOf(fi fs.FileInfo) (fileOwner, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileOwner{}, false
	}
	return fileOwner{uid: int(st.Uid), gid: int(st.Gid), links: uint64(st.Nlink)}, true
}
