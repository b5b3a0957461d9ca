package logging

// MESSAGE_ID values of the lifecycle events, one per known value of the
// "event" attribute. They are fixed: journalctl MESSAGE_ID=… queries and
// catalog entries may rely on them. Each is a random 128-bit id (a version 4
// UUID) written as 32 lowercase hex digits, the form systemd's catalog uses.
const (
	MessageIDUpgradeStarted    = "b5733bf465974866a4896ba80643f411"
	MessageIDUpgradeCommitted  = "73322ab9d63245698debbbdd0b55672b"
	MessageIDUpgradeRolledBack = "bed4e2b7c40d42cc9291e1b085198673"
	MessageIDUpgradeFailed     = "ff9b4b2fe17841e1937b733982ecd7dc"
	MessageIDReloadStarted     = "d971b272c3b14177bd57cb16003f8794"
	MessageIDReloadOK          = "26d1d1c48ad147aaa7fa201e78134046"
	MessageIDReloadFailed      = "527370a9b4984b409ccd80abc1ac9fa5"
	MessageIDWorkerCrashed     = "34cd23173dc043c9933778f622718be5"
	MessageIDReady             = "fdb23e8b48634ef5b0b8e45a164ff044"
	MessageIDStopping          = "57367b0fd3f7486d90a5b84cf60d7a6d"
	MessageIDProbationFailed   = "174da87b6ff64e878dfc7bdf5f4f2c33"
)

// messageIDs maps each known "event" value to its MESSAGE_ID.
var messageIDs = map[string]string{
	"upgrade-started":     MessageIDUpgradeStarted,
	"upgrade-committed":   MessageIDUpgradeCommitted,
	"upgrade-rolled-back": MessageIDUpgradeRolledBack,
	"upgrade-failed":      MessageIDUpgradeFailed,
	"reload-started":      MessageIDReloadStarted,
	"reload-ok":           MessageIDReloadOK,
	"reload-failed":       MessageIDReloadFailed,
	"worker-crashed":      MessageIDWorkerCrashed,
	"ready":               MessageIDReady,
	"stopping":            MessageIDStopping,
	"probation-failed":    MessageIDProbationFailed,
}

// MessageID returns the MESSAGE_ID of a lifecycle event ("upgrade-started",
// "ready", …), or "" if event is not one of the known values.
func MessageID(event string) string {
	return messageIDs[event]
}

// Events returns the known values of the "event" attribute, in the order of
// the table in the package documentation.
func Events() []string {
	return []string{
		"upgrade-started", "upgrade-committed", "upgrade-rolled-back", "upgrade-failed",
		"reload-started", "reload-ok", "reload-failed",
		"worker-crashed", "ready", "stopping", "probation-failed",
	}
}
