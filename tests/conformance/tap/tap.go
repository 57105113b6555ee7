// Package tap writes the Test Anything Protocol (version 13), with the API of
// github.com/mndrix/tap-go, which the OCI runtime-tools validation programs import.
//
// Debian packages runtime-tools' sources but not tap-go, and CI reaches no Go module
// proxy, so wharf's conformance script builds the suite against this package (GOPATH
// mode, github.com/mndrix/tap-go). Only the output format matters to the script: one
// "ok N - description" or "not ok N - description" line a test, "# " diagnostics, YAML
// blocks as JSON between "---" and "...", and a "1..N" plan.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// T is one TAP producer.
type T struct {
	mu             sync.Mutex
	nextTestNumber *int
	// TODO marks the tests written through this T as TODO directives.
	TODO bool
	// Writer receives the output (standard output by default).
	Writer io.Writer
}

// New makes a producer writing to standard output.
func New() *T {
	n := 1
	return &T{nextTestNumber: &n, Writer: os.Stdout}
}

func (t *T) printf(format string, a ...interface{}) {
	fmt.Fprintf(t.Writer, format, a...)
}

// Header writes the version line and, when testCount is positive, the plan.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
	}
}

// Ok writes one test's result.
func (t *T) Ok(test bool, description string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ok := "ok"
	if !test {
		ok = "not ok"
	}
	description = strings.ReplaceAll(description, "\n", " ")
	if t.TODO {
		t.printf("%s %d # TODO %s\n", ok, *t.nextTestNumber, description)
	} else {
		t.printf("%s %d - %s\n", ok, *t.nextTestNumber, description)
	}
	*t.nextTestNumber++
}

// Fail writes a failed test.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Pass writes a passed test.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Count is how many tests were written.
func (t *T) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.nextTestNumber - 1
}

// AutoPlan writes the plan for the tests written so far.
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Diagnostic writes a comment, each line prefixed with "# ".
func (t *T) Diagnostic(message string) {
	t.printf("# %s\n", strings.ReplaceAll(message, "\n", "\n# "))
}

// Diagnosticf writes a formatted comment.
func (t *T) Diagnosticf(format string, a ...interface{}) {
	t.Diagnostic(fmt.Sprintf(format, a...))
}

// Skip writes count skipped tests.
func (t *T) Skip(count int, description string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.nextTestNumber, description)
		*t.nextTestNumber++
	}
}

// Todo is a producer sharing this one's numbering whose tests are TODO directives.
func (t *T) Todo() *T {
	return &T{nextTestNumber: t.nextTestNumber, TODO: true, Writer: t.Writer}
}

// YAML writes a YAML block (as JSON, which is YAML) describing the last test.
func (t *T) YAML(message interface{}) error {
	bytes, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", bytes)
	return nil
}
