package request

import "strings"

// Limits are the bounds of one request's files (preview.Limits has their
// defaults).
type Limits struct {
	MaxFiles        int   // files plus deletions
	MaxFileBytes    int64 // decoded bytes per file
	MaxRequestBytes int64 // decoded bytes of all files
	MaxPathLength   int   // bytes per file name
	MaxPathDepth    int   // components of a file name
}

// Sent is one file of a request with its content decoded: what Check
// checks.
type Sent struct {
	Name    string
	SentLen int    // bytes of the content as sent
	Data    []byte // the content decoded; nil when Err is set or it was not decoded
	Err     error  // why the content could not be decoded
}

// File is a checked file, decoded and ready to write.
type File struct {
	Name string
	Data []byte
}

// Checked is a request's files after Check: what to write, what was
// dropped, and the package.json they carried, if any.
type Checked struct {
	Write       []File
	Ignored     []string
	PackageJSON []byte
}

// Check validates every file of a request, and the names it deletes,
// before anything is written: names, encodings and sizes. A package.json
// among the files goes to PackageJSON; package-lock.json, and the files
// that Node would run unless allowConfig, are Ignored. An error is a
// *Error, or a *QuotaError for a name deeper than l.MaxPathDepth.
func Check(files []Sent, deletes []string, l Limits, allowConfig bool) (Checked, error) {
	var out Checked
	if n := len(files) + len(deletes); n > l.MaxFiles {
		return out, Invalid(CodeTooLarge, "%d files in one request: at most %d", n, l.MaxFiles)
	}
	var total int64
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		name, err := CleanPath(f.Name, l.MaxPathLength)
		if err != nil {
			return out, err
		}
		if depth := strings.Count(name, "/") + 1; depth > l.MaxPathDepth {
			return out, &QuotaError{Limit: "depth", Max: int64(l.MaxPathDepth), Value: int64(depth), Path: name}
		}
		if seen[name] {
			return out, Invalid(CodeBadPath, "file %q appears twice", name)
		}
		seen[name] = true
		// base64 never shrinks below 3/4.
		if int64(f.SentLen)*3/4 > l.MaxFileBytes {
			return out, Invalid(CodeTooLarge, "file %q is larger than %d bytes", name, l.MaxFileBytes)
		}
		if f.Err != nil {
			return out, f.Err
		}
		data := f.Data
		if int64(len(data)) > l.MaxFileBytes {
			return out, Invalid(CodeTooLarge, "file %q is larger than %d bytes", name, l.MaxFileBytes)
		}
		if total += int64(len(data)); total > l.MaxRequestBytes {
			return out, Invalid(CodeTooLarge, "the files add up to more than %d bytes", l.MaxRequestBytes)
		}
		switch {
		case name == "package.json":
			out.PackageJSON = data
		case name == "package-lock.json" || !allowConfig && IsExecuted(name):
			out.Ignored = append(out.Ignored, name)
		default:
			out.Write = append(out.Write, File{Name: name, Data: data})
		}
	}
	for _, d := range deletes {
		name, err := CleanPath(d, l.MaxPathLength)
		if err != nil {
			return out, err
		}
		if name == "package.json" {
			return out, Invalid(CodeBadPath, "package.json cannot be deleted")
		}
	}
	return out, nil
}
