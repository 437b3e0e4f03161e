// Package zipaes writes a ZIP archive holding one file encrypted with
// WinZip's AES-256 encryption (AE-2), which 7-Zip, WinZip and the file
// managers of Windows 11 and macOS open. The standard library's
// archive/zip cannot encrypt. Posthorn uses it for the inbound log's
// download (WIRE.md §5), from the CLI and the web console.
package zipaes

import (
	"bufio"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"time"
)

// The format: WinZip, "AES Encryption Information: Encryption
// Specification AE-1 and AE-2", and PKWARE's APPNOTE.TXT 6.3 for the ZIP
// structures.
//
// The file's data is, in order: a 16-byte random salt, a 2-byte password
// verification value, the deflated content encrypted with AES-256 in CTR
// mode, and a 10-byte authentication code. PBKDF2-HMAC-SHA1 with 1000
// iterations derives 66 bytes from the password and salt: the AES key,
// the HMAC-SHA1 key and the verification value. The CTR counter is a
// little-endian number starting at 1 (unlike crypto/cipher's big-endian
// CTR), and the authentication code is HMAC-SHA1 over the encrypted data,
// cut to 10 bytes. AE-2 stores no CRC (the code authenticates instead), so
// the CRC fields are 0.

const (
	aesKeyLen        = 32 // AES-256
	aesSaltLen       = 16 // for AES-256
	aesVerifierLen   = 2
	aesAuthLen       = 10
	aesPBKDF2Rounds  = 1000
	zipMethodAES     = 99 // compression method of AES-encrypted entries
	zipMethodDeflate = 8
	zipVersionAES    = 51 // "version needed to extract" for AES entries
	zipFlags         = 0x0001 | 0x0008 | 0x0800
	// 0x0001: encrypted; 0x0008: sizes in a data descriptor after the
	// data, so the file streams; 0x0800: the name is UTF-8.
)

// aesExtra is the 0x9901 extra field: data size 7, vendor version 2 (AE-2),
// vendor ID "AE", strength 3 (AES-256), then the real compression method.
var aesExtra = []byte{0x01, 0x99, 0x07, 0x00, 0x02, 0x00, 'A', 'E', 0x03, zipMethodDeflate, 0x00}

// Write writes a ZIP archive to w holding one file, name, whose content
// fill writes, encrypted with password. The archive streams: nothing is
// held in memory but buffers, so fill may write gigabytes. An error from
// fill is returned as it is; the archive is then incomplete.
func Write(w io.Writer, name, password string, modTime time.Time, fill func(io.Writer) error) error {
	if password == "" {
		return errors.New("write zip: empty password")
	}
	if len(name) > math.MaxUint16 {
		return errors.New("write zip: file name too long")
	}
	cw := &countWriter{w: bufio.NewWriterSize(w, 64<<10)}
	salt := make([]byte, aesSaltLen)
	rand.Read(salt) // never fails (crypto/rand documentation, Go 1.24+)
	keys, err := pbkdf2.Key(sha1.New, password, salt, aesPBKDF2Rounds, 2*aesKeyLen+aesVerifierLen)
	if err != nil {
		return fmt.Errorf("write zip: derive key: %w", err)
	}
	block, err := aes.NewCipher(keys[:aesKeyLen])
	if err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	dosTime, dosDate := dosDateTime(modTime)

	// Local file header (APPNOTE 4.3.7).
	lh := make([]byte, 0, 30+len(name)+len(aesExtra))
	lh = binary.LittleEndian.AppendUint32(lh, 0x04034b50)
	lh = binary.LittleEndian.AppendUint16(lh, zipVersionAES)
	lh = binary.LittleEndian.AppendUint16(lh, zipFlags)
	lh = binary.LittleEndian.AppendUint16(lh, zipMethodAES)
	lh = binary.LittleEndian.AppendUint16(lh, dosTime)
	lh = binary.LittleEndian.AppendUint16(lh, dosDate)
	lh = binary.LittleEndian.AppendUint32(lh, 0) // CRC: none in AE-2
	lh = binary.LittleEndian.AppendUint32(lh, 0) // sizes: in the data descriptor
	lh = binary.LittleEndian.AppendUint32(lh, 0)
	lh = binary.LittleEndian.AppendUint16(lh, uint16(len(name)))
	lh = binary.LittleEndian.AppendUint16(lh, uint16(len(aesExtra)))
	lh = append(lh, name...)
	lh = append(lh, aesExtra...)
	if _, err := cw.Write(lh); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}

	dataStart := cw.n
	cw.Write(salt)
	cw.Write(keys[2*aesKeyLen:])
	enc := &aesCTRWriter{w: cw, block: block, mac: hmac.New(sha1.New, keys[aesKeyLen:2*aesKeyLen])}
	plain := &countWriter{}
	fw, err := flate.NewWriter(enc, flate.DefaultCompression)
	if err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	plain.w = fw
	if err := fill(plain); err != nil {
		return err
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	if _, err := cw.Write(enc.mac.Sum(nil)[:aesAuthLen]); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	compressed := cw.n - dataStart
	if compressed > math.MaxUint32 || plain.n > math.MaxUint32 {
		return errors.New("write zip: content larger than 4 GiB (ZIP64 is not written)")
	}

	// Data descriptor (APPNOTE 4.3.9), with its optional signature.
	dd := binary.LittleEndian.AppendUint32(nil, 0x08074b50)
	dd = binary.LittleEndian.AppendUint32(dd, 0)
	dd = binary.LittleEndian.AppendUint32(dd, uint32(compressed))
	dd = binary.LittleEndian.AppendUint32(dd, uint32(plain.n))
	cw.Write(dd)

	// Central directory header (APPNOTE 4.3.12) and its end (4.3.16).
	cdStart := cw.n
	cd := binary.LittleEndian.AppendUint32(nil, 0x02014b50)
	cd = binary.LittleEndian.AppendUint16(cd, 3<<8|63) // made by: Unix, spec 6.3
	cd = binary.LittleEndian.AppendUint16(cd, zipVersionAES)
	cd = binary.LittleEndian.AppendUint16(cd, zipFlags)
	cd = binary.LittleEndian.AppendUint16(cd, zipMethodAES)
	cd = binary.LittleEndian.AppendUint16(cd, dosTime)
	cd = binary.LittleEndian.AppendUint16(cd, dosDate)
	cd = binary.LittleEndian.AppendUint32(cd, 0)
	cd = binary.LittleEndian.AppendUint32(cd, uint32(compressed))
	cd = binary.LittleEndian.AppendUint32(cd, uint32(plain.n))
	cd = binary.LittleEndian.AppendUint16(cd, uint16(len(name)))
	cd = binary.LittleEndian.AppendUint16(cd, uint16(len(aesExtra)))
	cd = binary.LittleEndian.AppendUint16(cd, 0)            // comment
	cd = binary.LittleEndian.AppendUint16(cd, 0)            // disk
	cd = binary.LittleEndian.AppendUint16(cd, 0)            // internal attributes
	cd = binary.LittleEndian.AppendUint32(cd, 0o100600<<16) // regular file, rw-------
	cd = binary.LittleEndian.AppendUint32(cd, 0)            // the local header is at 0
	cd = append(cd, name...)
	cd = append(cd, aesExtra...)
	cw.Write(cd)
	cdLen := cw.n - cdStart
	end := binary.LittleEndian.AppendUint32(nil, 0x06054b50)
	end = binary.LittleEndian.AppendUint16(end, 0)
	end = binary.LittleEndian.AppendUint16(end, 0)
	end = binary.LittleEndian.AppendUint16(end, 1)
	end = binary.LittleEndian.AppendUint16(end, 1)
	end = binary.LittleEndian.AppendUint32(end, uint32(cdLen))
	end = binary.LittleEndian.AppendUint32(end, uint32(cdStart))
	end = binary.LittleEndian.AppendUint16(end, 0)
	if _, err := cw.Write(end); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	if cw.err != nil {
		return fmt.Errorf("write zip: %w", cw.err)
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	return nil
}

// aesCTRWriter encrypts with AES in WinZip's CTR mode and feeds the
// ciphertext to the HMAC.
type aesCTRWriter struct {
	w       io.Writer
	block   cipher.Block
	mac     hash.Hash
	counter uint64
	ks      [aes.BlockSize]byte // key stream of the current block
	used    int                 // bytes of ks already used
	buf     []byte
}

func (a *aesCTRWriter) Write(p []byte) (int, error) {
	a.buf = a.buf[:0]
	for _, b := range p {
		if a.used == 0 || a.used == aes.BlockSize {
			// The counter block is the counter as a 16-byte little-endian
			// number; the first block uses 1.
			a.counter++
			var ctr [aes.BlockSize]byte
			binary.LittleEndian.PutUint64(ctr[:8], a.counter)
			a.block.Encrypt(a.ks[:], ctr[:])
			a.used = 0
		}
		a.buf = append(a.buf, b^a.ks[a.used])
		a.used++
	}
	a.mac.Write(a.buf)
	if _, err := a.w.Write(a.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// countWriter counts the bytes written and keeps the first error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// dosDateTime converts a time to the MS-DOS date and time ZIP stores
// (local time, two-second resolution, years 1980 to 2107).
func dosDateTime(t time.Time) (uint16, uint16) {
	t = t.Local()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.Local)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.Local)
	}
	return uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2),
		uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
}
