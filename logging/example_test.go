package logging_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/baton-supervisor/baton/logging"
)

func ExampleNewPrefixedHandler() {
	log := slog.New(logging.NewPrefixedHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		// Drop the time so the output is stable.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("generation", 2)

	log.Debug("spawning", "worker", 1)
	log.Info("workers ready", "event", "ready")
	log.Warn("worker failed; restarting", "event", "worker-crashed", "worker", 1, "err", "exit status 1")
	log.Error("upgrade failed", "event", "upgrade-failed", "err", "new master not ready in 30s")
	// Output:
	// <7>level=DEBUG msg=spawning generation=2 worker=1
	// <6>level=INFO msg="workers ready" generation=2 event=ready
	// <4>level=WARN msg="worker failed; restarting" generation=2 event=worker-crashed worker=1 err="exit status 1"
	// <3>level=ERROR msg="upgrade failed" generation=2 event=upgrade-failed err="new master not ready in 30s"
}

func ExampleMessageID() {
	fmt.Println(logging.MessageID("worker-crashed"))
	fmt.Println(logging.MessageID("not-an-event") == "")
	// Output:
	// 34cd23173dc043c9933778f622718be5
	// true
}
