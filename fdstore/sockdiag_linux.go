//go:build linux

package fdstore

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// From linux/unix_diag.h.
const (
	udiagShowVFS   = 0x2 // UDIAG_SHOW_VFS
	unixDiagVFS    = 1   // UNIX_DIAG_VFS
	unixDiagReqLen = 24  // struct unix_diag_req
	unixDiagMsgLen = 16  // struct unix_diag_msg
)

// boundFile asks the kernel which file the unix socket sock is bound to
// (sock_diag(7), UNIX_DIAG_VFS): its inode number, of which the kernel
// gives the low 32 bits only, and the device of its file system, in
// st_dev encoding. It fails when the kernel has no unix sock_diag
// (CONFIG_UNIX_DIAG), when the socket lives in another network namespace,
// and for a socket bound to no file.
func boundFile(sock int) (ino uint32, dev uint64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(sock, &st); err != nil {
		return 0, 0, os.NewSyscallError("fstat", err)
	}
	if st.Ino > 1<<32-1 {
		return 0, 0, fmt.Errorf("sock_diag: socket inode %d does not fit the request", st.Ino)
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, 0, os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
	}
	defer unix.Close(nl)

	ne := binary.NativeEndian
	req := make([]byte, 0, unix.NLMSG_HDRLEN+unixDiagReqLen)
	req = ne.AppendUint32(req, unix.NLMSG_HDRLEN+unixDiagReqLen)
	req = ne.AppendUint16(req, unix.SOCK_DIAG_BY_FAMILY)
	req = ne.AppendUint16(req, unix.NLM_F_REQUEST)
	req = ne.AppendUint32(req, 1) // sequence number
	req = ne.AppendUint32(req, 0) // port id: the kernel's
	req = append(req, unix.AF_UNIX, 0, 0, 0)
	req = ne.AppendUint32(req, ^uint32(0)) // states: any
	req = ne.AppendUint32(req, uint32(st.Ino))
	req = ne.AppendUint32(req, udiagShowVFS)
	req = ne.AppendUint32(req, ^uint32(0)) // cookie: none
	req = ne.AppendUint32(req, ^uint32(0))
	if err := unix.Sendto(nl, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, os.NewSyscallError("sock_diag: sendto", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(nl, buf, 0)
	if err != nil {
		return 0, 0, os.NewSyscallError("sock_diag: recvfrom", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: %w", err)
	}
	for _, m := range msgs {
		switch {
		case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
			errno := -int32(ne.Uint32(m.Data))
			return 0, 0, os.NewSyscallError("sock_diag", syscall.Errno(errno))
		case m.Header.Type == unix.SOCK_DIAG_BY_FAMILY && len(m.Data) >= unixDiagMsgLen:
			if got := ne.Uint32(m.Data[4:]); got != uint32(st.Ino) {
				return 0, 0, fmt.Errorf("sock_diag: answer about socket %d, asked about %d", got, st.Ino)
			}
			return vfsAttr(m.Data[unixDiagMsgLen:])
		}
	}
	return 0, 0, fmt.Errorf("sock_diag: no answer about socket %d", st.Ino)
}

// vfsAttr finds UNIX_DIAG_VFS (struct unix_diag_vfs: u32 inode, u32
// device in the kernel's encoding) among the netlink attributes b.
func vfsAttr(b []byte) (ino uint32, dev uint64, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofRtAttr {
		l, typ := int(ne.Uint16(b)), ne.Uint16(b[2:])
		if l < unix.SizeofRtAttr || l > len(b) {
			break
		}
		if typ == unixDiagVFS && l >= unix.SizeofRtAttr+8 {
			kdev := ne.Uint32(b[unix.SizeofRtAttr+4:])
			return ne.Uint32(b[unix.SizeofRtAttr:]), unix.Mkdev(kdev>>20, kdev&(1<<20-1)), nil
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0, 0, fmt.Errorf("sock_diag: the socket is bound to no file")
}

// onDevice reports whether the file at pfd, with st_dev stDev, is on the
// file system of device dev. st_dev is that device on most file systems;
// btrfs gives each subvolume a device of its own, so the file system's
// device is also read from /proc/self/mountinfo for the file's mount.
func onDevice(pfd int, stDev, dev uint64) bool {
	if stDev == dev {
		return true
	}
	got, err := mountDev(pfd)
	return err == nil && got == dev
}

// mountDev returns the device of the file system the file at pfd is on, as
// /proc/self/mountinfo shows it for the file's mount.
func mountDev(pfd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(pfd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, os.NewSyscallError("statx", err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, fmt.Errorf("statx: no mount id (Linux 5.8 and later)")
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	id := strconv.FormatUint(stx.Mnt_id, 10)
	for line := range strings.SplitSeq(string(b), "\n") {
		// 26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != id {
			continue
		}
		maj, mnr, ok := strings.Cut(f[2], ":")
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(mnr, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return 0, fmt.Errorf("mountinfo: bad device %q", f[2])
		}
		return unix.Mkdev(uint32(ma), uint32(mi)), nil
	}
	return 0, fmt.Errorf("mountinfo: no mount %s", id)
}
