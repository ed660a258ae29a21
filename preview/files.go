package preview

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// This file is where a session's files are written: every path a client
// sends went through request.CleanPath, and every write goes through an
// os.Root opened on the session directory, so that neither "..", an absolute
// path nor a symbolic link can reach outside it.

// File is one file of a request, as the client sends it.
type File struct {
	// Name is the path relative to the project root, with forward slashes:
	// "src/App.tsx".
	Name string `json:"name"`
	// Content is the file's text, or its base64 form when Encoding says so.
	Content string `json:"content"`
	// Encoding is "" or "utf-8" for text and "base64" for binary content.
	Encoding string `json:"encoding,omitempty"`
}

// tmpPrefix names the temporary files of atomic writes; the session's Vite
// config tells the watcher to ignore them, and no client file may have it
// (request.CleanPath).
const tmpPrefix = request.TmpPrefix

// writeFiles writes each file into root atomically: the content goes to a
// temporary file in the same directory that then replaces the name, so that
// Vite's watcher never reads half a file.
func writeFiles(root *os.Root, files []pendingFile, own owner) error {
	staged, err := stageFiles(root, files, own)
	if err != nil {
		return err
	}
	defer staged.discard()
	return staged.commit(root)
}

// stagedFiles are files written under temporary names beside their own,
// waiting to replace them.
type stagedFiles struct {
	root  *os.Root
	tmp   []string // temporary names, in the order of names
	names []string
	done  int // how many were renamed into place
}

// stageFiles writes every file under a temporary name in its directory
// (creating the directories). On an error nothing is left of the temporary
// files; the directories stay.
func stageFiles(root *os.Root, files []pendingFile, own owner) (*stagedFiles, error) {
	st := &stagedFiles{root: root}
	for _, f := range files {
		tmp, err := stageFile(root, f.name, f.data, own)
		if err != nil {
			st.discard()
			return nil, err
		}
		st.tmp = append(st.tmp, tmp)
		st.names = append(st.names, f.name)
	}
	return st, nil
}

func stageFile(root *os.Root, name string, data []byte, own owner) (tmp string, err error) {
	defer func() { err = blockedPath(name, err) }()
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp = path.Join(path.Dir(name), tmpPrefix+hex.EncodeToString(rnd[:]))
	var f *os.File
	// An update committing meanwhile (line.go) may remove the directory
	// between the two steps, when its deletes empty it: then it is made
	// again. Once the file is in it, it stays.
	for tries := 0; ; tries++ {
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
			if err := own.giveDirs(root, dir); err != nil {
				return "", err
			}
		}
		f, err = root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || tries == 2 {
			return "", err
		}
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = own.give(root, tmp)
	}
	if err != nil {
		root.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// commit renames the staged files into place, in order: each rename is
// atomic, and a rename within a directory fails only when the disk does.
func (st *stagedFiles) commit(root *os.Root) error {
	for ; st.done < len(st.tmp); st.done++ {
		if err := root.Rename(st.tmp[st.done], st.names[st.done]); err != nil {
			return blockedPath(st.names[st.done], err)
		}
	}
	return nil
}

// discard removes the temporary files that were not committed.
func (st *stagedFiles) discard() {
	for _, tmp := range st.tmp[st.done:] {
		st.root.Remove(tmp)
	}
	st.done = len(st.tmp)
}

// removeFiles removes the named files from root, and the directories that
// this leaves empty (each one is a watch of Vite's watcher, counted by the
// session's quota); a missing file is not an error. It returns the names
// that were there.
func removeFiles(root *os.Root, names []string) ([]string, error) {
	var removed []string
	for _, n := range names {
		err := root.Remove(n)
		switch {
		case err == nil:
			removed = append(removed, n)
			// Remove fails on a directory that holds anything: that ends it.
			for d := path.Dir(n); d != "." && root.Remove(d) == nil; d = path.Dir(d) {
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return removed, blockedPath(n, err)
		}
	}
	return removed, nil
}

// escapes is os.Root's error for a path that would leave the root (an
// absolute path, or a symbolic link out of it). os keeps the sentinel
// unexported, so it is taken once from a lexical check that touches no file.
var escapes = sync.OnceValue(func() error {
	r, err := os.OpenRoot("/")
	if err != nil {
		return nil
	}
	defer r.Close()
	_, err = r.Lstat("/")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return nil
})

// blockedPath turns an error that the project's own files caused on the way
// to name into a bad_path request error: code in the sandbox may have made a
// component of the path a symbolic link out of the project, a file where a
// directory should be, or the reverse. Such a request cannot succeed until
// the client writes other names or deletes the blocking file, so it is the
// client's (400), not the service's (500). Other errors pass unchanged: a
// full disk stays ENOSPC for the caller to answer 507.
func blockedPath(name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	var le *os.LinkError
	if !errors.As(err, &pe) && !errors.As(err, &le) {
		return err
	}
	var why string
	switch {
	case escapes() != nil && errors.Is(err, escapes()):
		why = "a component is a symbolic link out of the project"
	case errors.Is(err, syscall.ELOOP):
		why = "a component is a symbolic link"
	case errors.Is(err, syscall.ENOTDIR):
		why = "a component is a file, not a directory"
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		why = "the name is a directory"
	default:
		return err
	}
	return request.Invalid(CodeBadPath, "file name %q cannot be written: %s in the project as it is now (%v)", name, why, err)
}

// pendingFile is a validated file, decoded and ready to write.
type pendingFile struct {
	name string
	data []byte
}
