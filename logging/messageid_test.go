package logging

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestMessageIDs(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := make(map[string]string)
	for _, event := range Events() {
		id := MessageID(event)
		if !hex32.MatchString(id) {
			t.Errorf("%s: MESSAGE_ID %q is not 32 lowercase hex digits", event, id)
		}
		// A version 4 UUID, as systemd-id128 new makes: version nibble 4,
		// variant bits 10.
		if id[12] != '4' || !strings.ContainsRune("89ab", rune(id[16])) {
			t.Errorf("%s: MESSAGE_ID %s is not a version 4 UUID", event, id)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share MESSAGE_ID %s", event, other, id)
		}
		seen[id] = event
	}
	if len(messageIDs) != len(Events()) {
		t.Errorf("messageIDs has %d events, Events %d", len(messageIDs), len(Events()))
	}
}

// TestDocTable checks that the table in the package documentation lists
// exactly the ids the code uses, in the order of Events.
func TestDocTable(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^//\t([a-z-]+) +([0-9a-f]{32})$`)
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		got = append(got, m[1]+" "+m[2])
	}
	var want []string
	for _, event := range Events() {
		want = append(want, event+" "+MessageID(event))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("doc.go table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
