# Note [A caching malloc for the CPU lane]
# LibTorch's CPU allocator takes every tensor from malloc. A CPU forward pass of IS-Net at 1024²
# allocates and frees hundreds of activations of 4–256 MiB; glibc serves each from a fresh mmap
# (its mmap threshold tops out at 32 MiB) and unmaps it on free, so every pass faults all of its
# activations in again: 2.7 M minor page faults and ~6 s of system time for one image on the dev
# VM (bench/RESULTS.md, 2026-11-30). A malloc that keeps freed pages for reuse removes most of
# that: tcmalloc (gperftools' minimal build) cut the faults to 0.23 M and system time to 0.6 s;
# jemalloc did the same only with page purging turned off, mimalloc 2.0 not at all. So the
# `segmentor` executable links tcmalloc_minimal where it is installed (Debian
# libtcmalloc-minimal4, pulled in by libgoogle-perftools4; scripts/setup.sh installs it).
# Linking, rather than LD_PRELOAD, makes it hold wherever the binary runs. Off for sanitizer
# builds (AddressSanitizer brings its own malloc) and with SEGMENTOR_ALLOCATOR=system.
set(SEGMENTOR_ALLOCATOR "auto" CACHE STRING "malloc for the segmentor executable: auto (tcmalloc_minimal where found) or system")
set_property(CACHE SEGMENTOR_ALLOCATOR PROPERTY STRINGS auto system)

function(segmentor_link_allocator target)
  if(SEGMENTOR_ALLOCATOR STREQUAL "system" OR SEGMENTOR_SANITIZE)
    message(STATUS "segmentor: ${target} uses the system malloc")
    return()
  endif()
  find_library(SEGMENTOR_TCMALLOC_LIBRARY
    NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)
  if(SEGMENTOR_TCMALLOC_LIBRARY)
    # Whole library, as needed even though no symbol is referenced by name: it replaces malloc.
    target_link_libraries(${target} PRIVATE
      "-Wl,--no-as-needed" ${SEGMENTOR_TCMALLOC_LIBRARY} "-Wl,--as-needed")
    message(STATUS "segmentor: ${target} links ${SEGMENTOR_TCMALLOC_LIBRARY} (Note [A caching malloc for the CPU lane])")
  else()
    message(STATUS "segmentor: tcmalloc_minimal not found; ${target} uses the system malloc")
  endif()
endfunction()
