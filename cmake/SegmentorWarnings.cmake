# Warnings apply to our own targets only; third-party headers come in as SYSTEM includes.
# -Wnull-dereference is left out: at -O2 GCC 12 reports it inside libstdc++'s std::string when
# inlined into CLI11 code, a false positive we cannot fix from here.
add_library(segmentor_warnings INTERFACE)
target_compile_options(segmentor_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wnon-virtual-dtor -Wold-style-cast -Wcast-align)
if(SEGMENTOR_WERROR)
  target_compile_options(segmentor_warnings INTERFACE -Werror)
endif()
if(SEGMENTOR_SANITIZE AND SEGMENTOR_SANITIZE_THREAD)
  message(FATAL_ERROR "SEGMENTOR_SANITIZE and SEGMENTOR_SANITIZE_THREAD exclude each other")
endif()
if(SEGMENTOR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(SEGMENTOR_SANITIZE_THREAD)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
