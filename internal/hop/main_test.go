package hop

import (
	"os"
	"testing"

	"github.com/vitehost/vitehost/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
