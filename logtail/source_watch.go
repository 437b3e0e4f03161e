package logtail

import (
	"errors"
	"io/fs"
	"log/slog"

	"github.com/nxadm/tail/watch"
	"gopkg.in/tomb.v1"
)

// Why FileSource reads the file itself and takes only change notification
// from github.com/nxadm/tail (v1.4.11, read in the module cache):
//
//   - tail.Line has Text, Num, SeekInfo and Time but no file identity, so a
//     line read just before a rotation cannot be told from one read just
//     after it; the cursor needs (dev, inode, offset).
//   - SeekInfo.Offset comes from Tell(), computed from the shared file and
//     reader after the line was read and while the tailing goroutine may
//     already be reopening; with MaxLineSize every piece of a cut line gets
//     the offset of the whole line's end.
//   - On a rename, waitForChanges selects between the Modified and Deleted
//     channels; when both are ready Go picks either, and on Deleted it calls
//     reopen(), which closes the old descriptor without reading what was
//     appended since the last read. That is the end-of-log loss of nxadm#28,
//     and no option turns it off. reopen() also discards a held partial line.
//   - Config.Location applies only to the first open: it cannot resume in
//     the rotated file found by inode and then continue with the new one.
//   - Without CompleteLines, a partial line at EOF is sent and the file is
//     sought to its end; with it, the partial is dropped on any reopen.
//   - Measured against a real postlogd (rename, SIGHUP to master, gzip a
//     second later, as `postfix logrotate` does, six times under load):
//     TailFile with ReOpen, Follow and CompleteLines stopped at "Waiting for
//     ... to appear" after the first rotation in every run, and with 300 ms
//     between rename and SIGHUP it also skipped the old file's last lines.
//     FileSource delivered every line once, in order, with polling off.
//
// The watch package is used as-is for wake-ups: InotifyFileWatcher's
// ChangeEvents reports modification, truncation and rename/removal of the
// path, and BlockUntilExists waits for a new file to appear. Two hazards of
// that package remain: it calls os.Exit (util.Fatal) if fsnotify cannot
// create its inotify instance, and if stat(2) of the path fails with an error
// other than "does not exist" after an event. The first is made unlikely by
// probing inotify_init1 before use (inotifyAvailable); the second needs a
// permission or I/O error on the log's own directory. Correctness never
// depends on a notification: the poll timer re-checks the file regardless.

// notifier turns change notifications for a path into non-blocking sends
// on wake. It runs until stop is called.
type notifier struct {
	t    tomb.Tomb
	done chan struct{}
}

func startNotifier(path string, wake chan<- struct{}, log *slog.Logger) *notifier {
	n := &notifier{done: make(chan struct{})}
	if err := inotifyAvailable(); err != nil {
		log.Warn("file change notification unavailable; polling only", "path", path, "err", err)
		close(n.done)
		return n
	}
	go n.run(path, wake, log)
	return n
}

func (n *notifier) stop() {
	n.t.Kill(nil)
	<-n.done
}

func (n *notifier) run(path string, wake chan<- struct{}, log *slog.Logger) {
	defer close(n.done)
	w := watch.NewInotifyFileWatcher(path)
	for {
		if err := w.BlockUntilExists(&n.t); err != nil {
			if !errors.Is(err, tomb.ErrDying) {
				log.Warn("file change notification failed; polling only", "path", path, "err", err)
			}
			return
		}
		changes, err := w.ChangeEvents(&n.t, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // replaced between the two calls: wait for the next one
			}
			log.Warn("file change notification failed; polling only", "path", path, "err", err)
			return
		}
		// Whatever happened before the watch was armed had no event: make
		// the reader look once now.
		signal(wake)
	events:
		for {
			select {
			case <-changes.Modified:
				signal(wake)
			case <-changes.Truncated:
				signal(wake)
			case <-changes.Deleted:
				// The watch on this inode is gone; arm one on whatever
				// the path names next.
				signal(wake)
				break events
			case <-n.t.Dying():
				return
			}
		}
	}
}

// signal wakes a reader without ever blocking: one pending wake-up is as
// good as many.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
