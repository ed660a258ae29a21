package preview

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		require.True(t, ValidID(id), id)
		require.Len(t, id, IDLength)
		require.False(t, seen[id])
		seen[id] = true
	}
	// A client's own ids: TestValidID.
	for _, bad := range []string{"", strings.Repeat("A", 26), strings.Repeat("a", 25) + "-", "../" + strings.Repeat("a", 23), strings.Repeat("a", 56)} {
		assert.False(t, ValidID(bad), bad)
	}
}

// checkFiles checks files as the Manager's methods do: decoded, then
// checked.
func checkFiles(files []File, deletes []string, l Limits, allowConfig bool) (checkedFiles, error) {
	return checkSent(sentFiles(files, l), deletes, l, allowConfig)
}

func TestCheckFiles(t *testing.T) {
	l := Limits{}.withDefaults()
	png := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff}
	got, err := checkFiles([]File{
		{Name: "src/App.tsx", Content: "export default 1"},
		{Name: "public/logo.png", Content: base64.StdEncoding.EncodeToString(png), Encoding: "base64"},
		{Name: "vite.config.ts", Content: "export default {}"},
		{Name: "postcss.config.js", Content: "module.exports = {}"},
		{Name: ".npmrc", Content: "registry=http://evil"},
		{Name: "package.json", Content: `{"dependencies":{"react":"19"}}`},
		{Name: "src/vite.config.ts", Content: "not at the root: plain source"},
	}, nil, l, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"vite.config.ts", "postcss.config.js", ".npmrc"}, got.ignored)
	assert.JSONEq(t, `{"dependencies":{"react":"19"}}`, string(got.packageJSON))
	require.Len(t, got.write, 3)
	assert.Equal(t, png, got.write[1].data)

	withConfig, err := checkFiles([]File{{Name: "vite.config.ts", Content: "x"}}, nil, l, true)
	require.NoError(t, err)
	assert.Empty(t, withConfig.ignored)

	bad := []struct {
		files   []File
		deletes []string
		code    string
	}{
		{[]File{{Name: "a", Content: "x"}, {Name: "a", Content: "y"}}, nil, CodeBadPath},
		{[]File{{Name: "a", Content: "!!", Encoding: "base64"}}, nil, CodeBadEncoding},
		{[]File{{Name: "a", Content: "x", Encoding: "rot13"}}, nil, CodeBadEncoding},
		{[]File{{Name: "a", Content: strings.Repeat("x", int(l.MaxFileBytes)+1)}}, nil, CodeTooLarge},
		{make([]File, l.MaxFiles+1), nil, CodeTooLarge},
		{nil, []string{"../x"}, CodeBadPath},
		{nil, []string{"package.json"}, CodeBadPath},
	}
	for i, tt := range bad {
		_, err := checkFiles(tt.files, tt.deletes, l, false)
		var re *RequestError
		require.ErrorAs(t, err, &re, "case %d", i)
		assert.Equal(t, tt.code, re.Code, "case %d: %v", i, err)
	}

	small := Limits{MaxRequestBytes: 10}.withDefaults()
	_, err = checkFiles([]File{{Name: "a", Content: "123456"}, {Name: "b", Content: "123456"}}, nil, small, false)
	assert.ErrorContains(t, err, "add up to more than 10 bytes")
}
