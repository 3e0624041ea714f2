from reslint.entry import main

main()
