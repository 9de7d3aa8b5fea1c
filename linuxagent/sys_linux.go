package linuxagent

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// statStamp adds the inode and change time to st, so that a file replaced
// by rename or rewritten within one mtime tick is still seen to change.
func statStamp(fi os.FileInfo, st *fileStamp) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = uint64(sys.Ino)
		st.ctime = int64(sys.Ctim.Sec)*1e9 + int64(sys.Ctim.Nsec)
	}
}

// groupMembers returns the processes of process group pgid that are still
// alive (zombies, which hold nothing but their process ID until their
// parent reaps them, are not counted), read from /proc. ok is false when
// /proc cannot be read.
func groupMembers(pgid int) (pids []int, ok bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, false
	}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		g, state, ok := procStat(pid)
		if ok && g == pgid && state != 'Z' && state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids, true
}

// procStat returns the process group and state of a process from
// /proc/PID/stat.
func procStat(pid int) (pgid int, state byte, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgid, err = strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return pgid, f[0][0], true
}
