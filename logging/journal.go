package logging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
)

// identifier is the SYSLOG_IDENTIFIER of every journal entry.
const identifier = "baton"

// sender delivers one native-protocol datagram to journald.
type sender interface {
	send(datagram []byte) error
}

// journalHandler writes each record as one journald native-protocol entry:
// MESSAGE (the message, then " key=value" for each attribute), PRIORITY,
// SYSLOG_IDENTIFIER, MESSAGE_ID for a known "event", and one BATON_* field
// per attribute. A record whose datagram cannot be sent goes to fallback.
type journalHandler struct {
	out      sender
	level    slog.Leveler
	fallback slog.Handler

	// What WithAttrs and WithGroup added:
	fields      []byte // encoded BATON_* fields
	text        []byte // " key=value" for each attribute
	messageID   string // of the last "event" attribute outside any group
	fieldGroups string // "BATON_" then each open group and '_'
	textGroups  string // each open group and '.'
}

func newJournalHandler(out sender, level slog.Leveler, fallback slog.Handler) *journalHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &journalHandler{out: out, level: level, fallback: fallback, fieldGroups: fieldPrefix}
}

// entry is the scratch space of one record; entries are pooled.
type entry struct {
	fields    []byte
	text      []byte
	message   []byte
	datagram  []byte
	messageID string
}

var entries = sync.Pool{New: func() any { return new(entry) }}

// free returns e to the pool unless one of its buffers grew large.
func (e *entry) free() {
	const max = 64 << 10
	if cap(e.fields) > max || cap(e.text) > max || cap(e.message) > max || cap(e.datagram) > max {
		return
	}
	entries.Put(e)
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	e := entries.Get().(*entry)
	defer e.free()
	e.fields = append(e.fields[:0], h.fields...)
	e.text = append(e.text[:0], h.text...)
	e.messageID = h.messageID
	r.Attrs(func(a slog.Attr) bool {
		e.add(h.fieldGroups, h.textGroups, a)
		return true
	})
	e.message = append(append(e.message[:0], r.Message...), e.text...)

	d := appendField(e.datagram[:0], "MESSAGE", e.message)
	d = appendField(d, "PRIORITY", strconv.Itoa(priority(r.Level)))
	d = appendField(d, "SYSLOG_IDENTIFIER", identifier)
	if e.messageID != "" {
		d = appendField(d, "MESSAGE_ID", e.messageID)
	}
	d = append(d, e.fields...)
	e.datagram = d

	err := h.out.send(d)
	if err == nil {
		return nil
	}
	// journald is gone or refused the entry: the line must not be lost.
	if ferr := h.fallback.Handle(ctx, r); ferr != nil {
		return errors.Join(fmt.Errorf("logging: journal: %w", err), ferr)
	}
	return nil
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	e := &entry{fields: slices.Clone(h.fields), text: slices.Clone(h.text), messageID: h.messageID}
	for _, a := range attrs {
		e.add(h.fieldGroups, h.textGroups, a)
	}
	h2 := *h
	h2.fields, h2.text, h2.messageID = e.fields, e.text, e.messageID
	h2.fallback = h.fallback.WithAttrs(attrs)
	return &h2
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.fieldGroups = appendGroup(h.fieldGroups, name)
	h2.textGroups = h.textGroups + name + "."
	h2.fallback = h.fallback.WithGroup(name)
	return &h2
}

// add appends attribute a, inside the groups that fieldGroups and textGroups
// spell, to e: as a field, as " key=value" text, and, for an "event" outside
// any group that names a known lifecycle event, as e's MESSAGE_ID. Groups
// are flattened; an empty group and an attribute with an empty key are
// left out, and a group with an empty key is inlined, as slog's handlers do.
func (e *entry) add(fieldGroups, textGroups string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key != "" {
			fieldGroups = appendGroup(fieldGroups, a.Key)
			textGroups = textGroups + a.Key + "."
		}
		for _, ga := range attrs {
			e.add(fieldGroups, textGroups, ga)
		}
		return
	}
	if a.Key == "" {
		return
	}
	s := valueString(v)

	e.fields = appendFieldValue(appendAttrField(e.fields, fieldGroups, a.Key), s)

	e.text = append(e.text, ' ')
	if textGroups == "" {
		e.text = appendText(e.text, a.Key)
	} else {
		e.text = appendText(e.text, textGroups+a.Key)
	}
	e.text = append(e.text, '=')
	e.text = appendText(e.text, s)

	if a.Key == "event" && fieldGroups == fieldPrefix && v.Kind() == slog.KindString {
		if id := MessageID(s); id != "" {
			e.messageID = id
		}
	}
}
