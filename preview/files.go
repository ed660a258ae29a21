package preview

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"

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

func stageFile(root *os.Root, name string, data []byte, own owner) (string, error) {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := own.giveDirs(root, dir); err != nil {
			return "", err
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), tmpPrefix+hex.EncodeToString(rnd[:]))
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
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
			return err
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
			return removed, err
		}
	}
	return removed, nil
}

// pendingFile is a validated file, decoded and ready to write.
type pendingFile struct {
	name string
	data []byte
}
