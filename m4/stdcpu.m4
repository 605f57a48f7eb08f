# STDCPU_CHECK_ISA_FLAGS(NAME, FLAGS, PROLOGUE, BODY)
# Compiles and links BODY with FLAGS. Sets have_<name>=yes|no and
# AC_SUBSTs NAME_CFLAGS for the ISA's convenience library.
AC_DEFUN([STDCPU_CHECK_ISA_FLAGS], [
  m4_pushdef([lname], m4_tolower([$1]))
  AC_MSG_CHECKING([whether $CC builds $1 kernels with '$2'])
  stdcpu_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS $2"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([$3], [$4])],
    [have_[]lname=yes], [have_[]lname=no])
  CFLAGS=$stdcpu_save_CFLAGS
  AC_MSG_RESULT([$have_[]lname])
  $1_CFLAGS="$2"
  AC_SUBST([$1_CFLAGS])
  m4_popdef([lname])
])

# STDCPU_CHECK_PTHREAD: -pthread for compile and link (gcc and clang).
AC_DEFUN([STDCPU_CHECK_PTHREAD], [
  AC_MSG_CHECKING([whether $CC accepts -pthread])
  stdcpu_save_CFLAGS=$CFLAGS
  stdcpu_save_LIBS=$LIBS
  CFLAGS="$CFLAGS -pthread"
  LIBS="-pthread $LIBS"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>
static void *f(void *p) { return p; }]],
      [[pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no]); AC_MSG_ERROR([POSIX threads (-pthread) are required])])
])
