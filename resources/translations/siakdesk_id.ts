<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="id_ID">
<context>
    <name>AgendaPanel</name>
    <message>
        <source>Roll-call template</source>
        <extracomment>"template", "next", "up", "down", "export"</extracomment>
        <translation>Templat laporan kecamatan</translation>
    </message>
    <message>
        <source>Replace the agenda with one report per kecamatan of Siak</source>
        <translation>Ganti agenda dengan satu laporan per kecamatan di Siak</translation>
    </message>
    <message>
        <source>Next item</source>
        <translation>Butir berikutnya</translation>
    </message>
    <message>
        <source>Move up</source>
        <translation>Naikkan</translation>
    </message>
    <message>
        <source>Move down</source>
        <translation>Turunkan</translation>
    </message>
    <message>
        <source>Export attendance...</source>
        <translation>Ekspor kehadiran...</translation>
    </message>
    <message>
        <source>My notes (kept on this PC only)</source>
        <translation>Catatan saya (hanya di PC ini)</translation>
    </message>
    <message>
        <source>{mark} {title}{office} ({minutes} min)</source>
        <translation>{mark} {title}{office} ({minutes} mnt)</translation>
    </message>
    <message>
        <source>No agenda yet</source>
        <translation>Belum ada agenda</translation>
    </message>
    <message>
        <source>No item in progress</source>
        <translation>Tidak ada butir yang berlangsung</translation>
    </message>
    <message>
        <source>Now: {title} · {elapsed} of {planned} min</source>
        <translation>Sekarang: {title} · {elapsed} dari {planned} mnt</translation>
    </message>
    <message>
        <source>over time</source>
        <translation>lewat waktu</translation>
    </message>
</context>
<context>
    <name>ChatPanel</name>
    <message>
        <source>Type a message</source>
        <translation>Ketik pesan</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>Kirim</translation>
    </message>
    <message>
        <source>You</source>
        <translation>Anda</translation>
    </message>
    <message>
        <source>You · sending...</source>
        <translation>Anda · mengirim...</translation>
    </message>
</context>
<context>
    <name>DeviceDialog</name>
    <message>
        <source>No camera</source>
        <translation>Tidak ada kamera</translation>
    </message>
    <message>
        <source>No microphone</source>
        <translation>Tidak ada mikrofon</translation>
    </message>
    <message>
        <source>No speaker</source>
        <translation>Tidak ada pengeras suara</translation>
    </message>
    <message>
        <source>Devices</source>
        <translation>Perangkat</translation>
    </message>
    <message>
        <source>&amp;Camera</source>
        <translation>&amp;Kamera</translation>
    </message>
    <message>
        <source>&amp;Microphone</source>
        <translation>&amp;Mikrofon</translation>
    </message>
    <message>
        <source>Level</source>
        <translation>Tingkat</translation>
    </message>
    <message>
        <source>&amp;Speaker</source>
        <translation>&amp;Pengeras suara</translation>
    </message>
    <message>
        <source>No camera: you join with audio only</source>
        <translation>Tanpa kamera: Anda bergabung dengan suara saja</translation>
    </message>
</context>
<context>
    <name>JoinScreen</name>
    <message>
        <source>Siak Regency online meeting</source>
        <translation>Rapat daring Kabupaten Siak</translation>
    </message>
    <message>
        <source>&amp;Server address</source>
        <translation>Alamat &amp;server</translation>
    </message>
    <message>
        <source>&amp;Room</source>
        <translation>&amp;Ruang</translation>
    </message>
    <message>
        <source>&amp;Passcode</source>
        <translation>&amp;Kode sandi</translation>
    </message>
    <message>
        <source>Your &amp;name</source>
        <translation>&amp;Nama Anda</translation>
    </message>
    <message>
        <source>&amp;Office</source>
        <translation>&amp;Kantor</translation>
    </message>
    <message>
        <source>e.g. Kandis District</source>
        <translation>mis. Kecamatan Kandis</translation>
    </message>
    <message>
        <source>Join the meeting</source>
        <translation>Gabung ke rapat</translation>
    </message>
    <message>
        <source>Check camera and microphone...</source>
        <translation>Periksa kamera dan mikrofon...</translation>
    </message>
    <message>
        <source>Type your name or your office.</source>
        <translation>Ketik nama atau kantor Anda.</translation>
    </message>
    <message>
        <source>The server address must look like https://host:port.</source>
        <translation>Alamat server harus seperti https://host:port.</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>SiakDesk · Siak Regency meeting</source>
        <extracomment>where the local chat copy and notes live; None and not remembering: memory only an emulated link for the window's session (the network lab; None: the real network) asks where to save the attendance CSV (a file dialog; tests answer themselves) the OS is asked not to sleep or blank the screen during a meeting</extracomment>
        <translation>SiakDesk · Rapat Kabupaten Siak</translation>
    </message>
    <message>
        <source>Agenda</source>
        <translation>Agenda</translation>
    </message>
    <message>
        <source>Wrong passcode for this room.</source>
        <translation>Kode sandi ruang ini salah.</translation>
    </message>
    <message>
        <source>There is no such room on this server.</source>
        <translation>Ruang itu tidak ada di server ini.</translation>
    </message>
    <message>
        <source>The room is full.</source>
        <translation>Ruang rapat sudah penuh.</translation>
    </message>
    <message>
        <source>Cannot reach the server. Check the address and the network.</source>
        <translation>Server tidak dapat dihubungi. Periksa alamat dan jaringan.</translation>
    </message>
    <message>
        <source>The server's certificate is not trusted.</source>
        <translation>Sertifikat server tidak dipercaya.</translation>
    </message>
    <message>
        <source>The server did not answer in time.</source>
        <translation>Server tidak menjawab tepat waktu.</translation>
    </message>
    <message>
        <source>Could not join: {reason}</source>
        <translation>Tidak dapat bergabung: {reason}</translation>
    </message>
    <message>
        <source>Not sent: {reason}</source>
        <translation>Tidak terkirim: {reason}</translation>
    </message>
    <message>
        <source>Chat</source>
        <translation>Obrolan</translation>
    </message>
    <message>
        <source>Chat ({count} new)</source>
        <translation>Obrolan ({count} baru)</translation>
    </message>
    <message>
        <source>Only the host can change the agenda.</source>
        <translation>Hanya pemimpin rapat yang dapat mengubah agenda.</translation>
    </message>
    <message>
        <source>The server did not send the attendance.</source>
        <translation>Server tidak mengirim daftar hadir.</translation>
    </message>
    <message>
        <source>Save attendance</source>
        <translation>Simpan daftar hadir</translation>
    </message>
    <message>
        <source>CSV files (*.csv)</source>
        <translation>Berkas CSV (*.csv)</translation>
    </message>
</context>
<context>
    <name>MeetingView</name>
    <message>
        <source>Unmute</source>
        <extracomment>"hemat data" switched on (True) or off what the user sees while the session gets back into the meeting by itself the microphone's level, so a user sees at once that the office is heard the link, as the session measures it: good, weak or lost</extracomment>
        <translation>Nyalakan mikrofon</translation>
    </message>
    <message>
        <source>Mute</source>
        <translation>Matikan mikrofon</translation>
    </message>
    <message>
        <source>Microphone on or off (Ctrl+D)</source>
        <translation>Mikrofon hidup atau mati (Ctrl+D)</translation>
    </message>
    <message>
        <source>Start camera</source>
        <translation>Nyalakan kamera</translation>
    </message>
    <message>
        <source>Stop camera</source>
        <translation>Matikan kamera</translation>
    </message>
    <message>
        <source>Camera on or off (Ctrl+E)</source>
        <translation>Kamera hidup atau mati (Ctrl+E)</translation>
    </message>
    <message>
        <source>Grid view</source>
        <translation>Tampilan kisi</translation>
    </message>
    <message>
        <source>Speaker view</source>
        <translation>Tampilan pembicara</translation>
    </message>
    <message>
        <source>Enlarge whoever is speaking (Ctrl+T)</source>
        <translation>Perbesar yang sedang berbicara (Ctrl+T)</translation>
    </message>
    <message>
        <source>Data saver</source>
        <translation>Hemat data</translation>
    </message>
    <message>
        <source>Send video no larger than 320x180, to save the data quota</source>
        <translation>Kirim video paling besar 320x180, agar kuota hemat</translation>
    </message>
    <message>
        <source>Devices</source>
        <translation>Perangkat</translation>
    </message>
    <message>
        <source>Choose camera, microphone and speaker</source>
        <translation>Pilih kamera, mikrofon dan pengeras suara</translation>
    </message>
    <message>
        <source>Microphone level</source>
        <translation>Tingkat suara mikrofon</translation>
    </message>
    <message>
        <source>Leave</source>
        <translation>Keluar</translation>
    </message>
    <message>
        <source>Leave the meeting (Ctrl+Shift+Q)</source>
        <translation>Keluar dari rapat (Ctrl+Shift+Q)</translation>
    </message>
    <message>
        <source>● Connection good</source>
        <translation>● Sambungan baik</translation>
    </message>
    <message>
        <source>● Connection weak</source>
        <translation>● Sambungan lemah</translation>
    </message>
    <message>
        <source>● No media arriving</source>
        <translation>● Media tidak masuk</translation>
    </message>
    <message>
        <source>Reconnecting... attempt {n}</source>
        <translation>Menyambung ulang... percobaan {n}</translation>
    </message>
    <message>
        <source>Reconnecting...</source>
        <translation>Menyambung ulang...</translation>
    </message>
    <message>
        <source>last media {seconds} s ago</source>
        <translation>media terakhir {seconds} detik lalu</translation>
    </message>
    <message>
        <source>connection lost {count} times so far</source>
        <translation>sudah {count} kali terputus</translation>
    </message>
    <message>
        <source>Not connected</source>
        <translation>Tidak tersambung</translation>
    </message>
    <message>
        <source>Connecting to the server...</source>
        <translation>Menyambung ke server...</translation>
    </message>
    <message>
        <source>Joining the meeting...</source>
        <translation>Bergabung ke rapat...</translation>
    </message>
    <message>
        <source>In the meeting · {count} participants</source>
        <translation>Dalam rapat · {count} peserta</translation>
    </message>
    <message>
        <source>Connection lost; getting back in by itself</source>
        <translation>Sambungan terputus; menyambung ulang sendiri</translation>
    </message>
    <message>
        <source>You left the meeting</source>
        <translation>Anda telah keluar dari rapat</translation>
    </message>
    <message>
        <source>Connection lost: {detail}</source>
        <translation>Sambungan terputus: {detail}</translation>
    </message>
    <message>
        <source>reconnects: {count}</source>
        <translation>sambung ulang: {count}</translation>
    </message>
</context>
<context>
    <name>ParticipantTile</name>
    <message>
        <source>{name} (you)</source>
        <translation>{name} (Anda)</translation>
    </message>
    <message>
        <source>{label} · mic off</source>
        <translation>{label} · mik mati</translation>
    </message>
    <message>
        <source>{label} · reconnecting...</source>
        <translation>{label} · menyambung ulang...</translation>
    </message>
    <message>
        <source>{label} · video paused (weak link)</source>
        <translation>{label} · video dijeda (sambungan lemah)</translation>
    </message>
</context>
</TS>